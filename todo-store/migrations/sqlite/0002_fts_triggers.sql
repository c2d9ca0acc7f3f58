-- The full-text index follows the tasks table through triggers, inside the statement that changes the row: a write
-- transaction sends no full-text statements of its own, and an update that changes neither the title nor the
-- description leaves the index alone. The index reads its text from `tasks` (external content: nothing is stored
-- twice) and keeps no per-document sizes (nothing ranks results). Keyed by the task's rowid, as before.
DROP TABLE tasks_fts;
CREATE VIRTUAL TABLE tasks_fts USING fts5 (
    title, description, content = 'tasks', columnsize = 0, tokenize = 'unicode61'
);
INSERT INTO tasks_fts (tasks_fts) VALUES ('rebuild');

CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_fts (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;

-- An external-content index deletes a row by the exact values it indexed: the old ones.
CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
END;

CREATE TRIGGER tasks_fts_update AFTER UPDATE OF title, description ON tasks
WHEN old.title IS NOT new.title OR old.description IS NOT new.description BEGIN
    INSERT INTO tasks_fts (tasks_fts, rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
    INSERT INTO tasks_fts (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
