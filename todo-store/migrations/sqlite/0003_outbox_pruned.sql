-- The highest outbox sequence the pruner has deleted: a reader positioned at or past it (the live stream resuming
-- from a client's Last-Event-ID) knows that every row after its position is still there.
CREATE TABLE outbox_pruned (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL
);
INSERT INTO outbox_pruned (id, seq) VALUES (1, 0);
