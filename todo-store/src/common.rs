//! The SQL both backends share, written once as a macro over the sqlx database type.
//!
//! Every statement binds its values (`$1`, `$2`, ...); the only SQL assembled at run time is the task list's
//! filter and order, from fixed fragments chosen by enums. Backend-specific parts (search, claiming, wake-ups,
//! migrations, the relay lease, how a create, an update, a new reminder or an audit batch reaches its transaction)
//! are inherent methods of each store: `search_clause`, `search_value`, `index_task`, `unindex_task`,
//! `notify_outbox`, `notify_reminders`, `wake_other_processes`, `run_migrations`, `relay_lease`, `create`, `update`,
//! `add_reminder`, `audit`, `save_cursor`, `write_gate`.

/// A write transaction together with the store's place in its writer queue ([`SqliteStore`](crate::SqliteStore)
/// has one; PostgreSQL none). The transaction ends (commit, or rollback on drop) before the place is given up:
/// fields drop in order.
pub(crate) struct WriteTx<DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    pub(crate) fn new(
        tx: sqlx::Transaction<'static, DB>,
        gate: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Self {
        WriteTx { tx, _gate: gate }
    }

    /// Commits, then gives up the place in the queue.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal) => {
        use $crate::rows::{self, TaskColumns, ReminderColumns};
        use sqlx::Row as _;

        fn db_err(e: sqlx::Error) -> $crate::Error {
            $crate::Error::from_sqlx($backend, e)
        }

        fn read_task(row: &<$db as sqlx::Database>::Row) -> $crate::Result<todo_domain::Task> {
            let status: String = row.try_get("status").map_err(db_err)?;
            rows::task_from(TaskColumns {
                id: row.try_get("id").map_err(db_err)?,
                owner: row.try_get("owner").map_err(db_err)?,
                title: row.try_get("title").map_err(db_err)?,
                title_key: String::new(),
                description: row.try_get("description").map_err(db_err)?,
                priority: row.try_get("priority").map_err(db_err)?,
                tags: row.try_get("tags").map_err(db_err)?,
                due_date: row.try_get("due_date").map_err(db_err)?,
                due_time: row.try_get("due_time").map_err(db_err)?,
                time_zone: row.try_get("time_zone").map_err(db_err)?,
                due_ms: 0,
                recurrence: row.try_get("recurrence").map_err(db_err)?,
                series_id: row.try_get("series_id").map_err(db_err)?,
                series_index: row.try_get("series_index").map_err(db_err)?,
                reminder_leads: row.try_get("reminder_leads").map_err(db_err)?,
                status: rows::status_from(&status)?,
                completed_at: row.try_get("completed_at").map_err(db_err)?,
                created_at: row.try_get("created_at").map_err(db_err)?,
                created_ms: 0,
                updated_at: row.try_get("updated_at").map_err(db_err)?,
                version: row.try_get("version").map_err(db_err)?,
            })
        }

        fn read_reminder(row: &<$db as sqlx::Database>::Row) -> $crate::Result<todo_domain::Reminder> {
            rows::reminder_from(ReminderColumns {
                id: row.try_get("id").map_err(db_err)?,
                task_id: row.try_get("task_id").map_err(db_err)?,
                owner: row.try_get("owner").map_err(db_err)?,
                lead_seconds: row.try_get("lead_seconds").map_err(db_err)?,
                remind_at: row.try_get("remind_at").map_err(db_err)?,
                status: row.try_get("status").map_err(db_err)?,
                fired_at: row.try_get("fired_at").map_err(db_err)?,
                created_at: row.try_get("created_at").map_err(db_err)?,
            })
        }

        fn read_outbox(row: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::OutboxRecord> {
            let headers: String = row.try_get("headers").map_err(db_err)?;
            Ok($crate::OutboxRecord {
                seq: row.try_get("seq").map_err(db_err)?,
                event_id: row.try_get("event_id").map_err(db_err)?,
                topic: row.try_get("topic").map_err(db_err)?,
                key: row.try_get("key").map_err(db_err)?,
                headers: rows::headers_from_json(&headers)?,
                payload: row.try_get("payload").map_err(db_err)?,
                created_at: row.try_get("created_at").map_err(db_err)?,
            })
        }

        const TASK_COLUMNS: &str = "id, owner, title, description, priority, tags, due_date, due_time, time_zone, \
            recurrence, series_id, series_index, reminder_leads, status, completed_at, created_at, updated_at, version";
        const REMINDER_COLUMNS: &str = "id, task_id, owner, lead_seconds, remind_at, status, fired_at, created_at";

        type Query<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;

        /// `($first, $first + 1, ...)`: `n` placeholders numbered from `first`, for the `VALUES` of an insert.
        fn placeholders(first: usize, n: usize, tail: &str) -> String {
            let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
            format!("({}{tail})", list.join(", "))
        }

        const TASK_INSERT: &str = "INSERT INTO tasks (id, owner, title, title_key, description, priority, tags, due_date, \
            due_time, time_zone, due_ms, recurrence, series_id, series_index, reminder_leads, status, completed_at, \
            created_at, created_ms, updated_at, version) VALUES ";
        const TASK_PARAMS: usize = 21;

        fn bind_task<'q>(q: Query<'q>, t: &todo_domain::Task) -> Query<'q> {
            let c = rows::task_columns(t);
            q.bind(c.id).bind(c.owner).bind(c.title).bind(c.title_key).bind(c.description).bind(c.priority)
            .bind(c.tags).bind(c.due_date).bind(c.due_time).bind(c.time_zone).bind(c.due_ms).bind(c.recurrence)
            .bind(c.series_id).bind(c.series_index).bind(c.reminder_leads).bind(c.status).bind(c.completed_at)
            .bind(c.created_at).bind(c.created_ms).bind(c.updated_at).bind(c.version)
        }

        const REMINDER_INSERT: &str = "INSERT INTO reminders (id, task_id, owner, lead_seconds, remind_at, remind_ms, \
            status, fired_at, created_at, emitted) VALUES ";
        const REMINDER_PARAMS: usize = 9;
        const REMINDER_TAIL: &str = ", 0";

        fn bind_reminder<'q>(q: Query<'q>, r: &todo_domain::Reminder) -> Query<'q> {
            q.bind(r.id.as_uuid())
            .bind(r.task_id.as_uuid())
            .bind(r.owner.as_uuid())
            .bind(r.lead.as_ref().map(todo_domain::LeadTime::seconds))
            .bind(r.remind_at)
            .bind(r.remind_at.timestamp_millis())
            .bind(r.status.as_str())
            .bind(r.fired_at)
            .bind(r.created_at)
        }

        const EVENT_INSERT: &str = "INSERT INTO outbox (event_id, topic, key, headers, payload, created_at) VALUES ";
        const EVENT_PARAMS: usize = 6;

        fn bind_event<'q>(q: Query<'q>, event: &todo_events::Event, now: chrono::DateTime<chrono::Utc>) -> Query<'q> {
            let record = todo_events::binding::encode(event, todo_events::binding::Mode::Structured);
            q.bind(event.id())
            .bind(event.topic().name())
            .bind(record.key)
            .bind(rows::headers_to_json(&record.headers))
            .bind(record.value)
            .bind(now)
        }

        async fn insert_task(conn: &mut <$db as sqlx::Database>::Connection, t: &todo_domain::Task) -> $crate::Result<()> {
            let sql = format!("{TASK_INSERT}{}", placeholders(1, TASK_PARAMS, ""));
            bind_task(sqlx::query(&sql), t).execute(&mut *conn).await.map_err(db_err)?;
            Ok(())
        }

        /// Replaces every changeable column of a task row (`$1` to `$17`) whose id, owner and stored version are `$18`,
        /// `$19` and `$20`.
        const TASK_REPLACE: &str = "UPDATE tasks SET title = $1, title_key = $2, description = $3, priority = $4, \
            tags = $5, due_date = $6, due_time = $7, time_zone = $8, due_ms = $9, recurrence = $10, series_id = $11, \
            series_index = $12, reminder_leads = $13, status = $14, completed_at = $15, updated_at = $16, \
            version = $17 WHERE id = $18 AND owner = $19 AND version = $20";

        /// Whether a task with id `$1` and owner `$2` exists: after a replace that changed no row, a conflict if it
        /// does, not found if not.
        const TASK_EXISTS: &str = "SELECT version FROM tasks WHERE id = $1 AND owner = $2";

        /// Replaces a task row whose stored version is `expected_version`.
        async fn replace_task(
            conn: &mut <$db as sqlx::Database>::Connection,
            task: &todo_domain::Task,
            expected_version: i64,
        ) -> $crate::Result<()> {
            let c = rows::task_columns(task);
            let done = sqlx::query(TASK_REPLACE)
            .bind(c.title).bind(c.title_key).bind(c.description).bind(c.priority).bind(c.tags).bind(c.due_date)
            .bind(c.due_time).bind(c.time_zone).bind(c.due_ms).bind(c.recurrence).bind(c.series_id)
            .bind(c.series_index).bind(c.reminder_leads).bind(c.status).bind(c.completed_at).bind(c.updated_at)
            .bind(c.version).bind(c.id).bind(c.owner).bind(expected_version)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
            if done.rows_affected() != 1 {
                let exists = sqlx::query(TASK_EXISTS)
                    .bind(c.id)
                    .bind(c.owner)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
                return Err(if exists.is_some() { $crate::Error::Conflict } else { $crate::Error::NotFound });
            }
            Ok(())
        }

        async fn insert_reminder(
            conn: &mut <$db as sqlx::Database>::Connection,
            r: &todo_domain::Reminder,
        ) -> $crate::Result<()> {
            let sql = format!("{REMINDER_INSERT}{}", placeholders(1, REMINDER_PARAMS, REMINDER_TAIL));
            bind_reminder(sqlx::query(&sql), r).execute(&mut *conn).await.map_err(db_err)?;
            Ok(())
        }

        async fn insert_events(
            conn: &mut <$db as sqlx::Database>::Connection,
            events: &[todo_events::Event],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            let sql = format!("{EVENT_INSERT}{}", placeholders(1, EVENT_PARAMS, ""));
            for event in events {
                bind_event(sqlx::query(&sql), event, now).execute(&mut *conn).await.map_err(db_err)?;
            }
            Ok(())
        }

        /// The audit row of an event unless its id has one; how many rows it inserted (0 or 1).
        async fn insert_audit(
            conn: &mut <$db as sqlx::Database>::Connection,
            event: &todo_events::Event,
            recorded_at: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<u64> {
            insert_audits(conn, std::slice::from_ref(&event), recorded_at).await
        }

        /// Stores a consumer's cursor (`$1` consumer, `$2` sequence, `$3` when).
        const CURSOR_UPSERT: &str = "INSERT INTO consumer_cursors (consumer, seq, updated_at) VALUES ($1, $2, $3) \
            ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at";

        const AUDIT_INSERT: &str =
            "INSERT INTO audit_log (event_id, owner, event_type, task_id, payload, occurred_at, recorded_at) VALUES ";
        const AUDIT_PARAMS: usize = 7;
        /// Rows per statement of a multi-row insert: rows are written in the largest of these that fit, so that a
        /// few prepared statements serve every number of rows.
        const INSERT_CHUNKS: [usize; 4] = [64, 16, 4, 1];

        /// The audit rows of events whose ids have none, in order; how many rows it inserted. Several rows per
        /// statement (one exchange with the database instead of one per event), in statements of 64, 16, 4 or 1 rows
        /// so that a few prepared statements serve every batch size.
        async fn insert_audits(
            conn: &mut <$db as sqlx::Database>::Connection,
            events: &[&todo_events::Event],
            recorded_at: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<u64> {
            let mut inserted = 0;
            let mut rest = events;
            while !rest.is_empty() {
                let n = INSERT_CHUNKS.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let rows: Vec<String> =
                    (0..n).map(|i| placeholders(1 + i * AUDIT_PARAMS, AUDIT_PARAMS, "")).collect();
                let sql = format!("{AUDIT_INSERT}{} ON CONFLICT (event_id) DO NOTHING", rows.join(", "));
                let mut query = sqlx::query(&sql);
                for event in chunk {
                    query = query
                        .bind(event.id())
                        .bind(event.data().user_id())
                        .bind(event.event_type().as_str())
                        .bind(event.data().task_id())
                        .bind(event.to_json())
                        .bind(event.time())
                        .bind(recorded_at);
                }
                inserted += query.execute(&mut *conn).await.map_err(db_err)?.rows_affected();
            }
            Ok(inserted)
        }

        /// Marks a claimed reminder fired and writes its event; false when the claim was lost.
        async fn fire_claimed(
            conn: &mut <$db as sqlx::Database>::Connection,
            id: todo_domain::ReminderId,
            lease_token: uuid::Uuid,
            event: &todo_events::Event,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<bool> {
            let done = sqlx::query("UPDATE reminders SET emitted = 1, fired_at = $1 WHERE id = $2 AND claim_token = $3 AND emitted = 0")
                .bind(now)
                .bind(id.as_uuid())
                .bind(lease_token)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            insert_events(conn, std::slice::from_ref(event), now).await?;
            Ok(true)
        }

        /// The rows of a new task: the task, its reminders and its events (the caller's transaction commits them).
        async fn insert_created(
            conn: &mut <$db as sqlx::Database>::Connection,
            task: &todo_domain::Task,
            reminders: &[todo_domain::Reminder],
            events: &[todo_events::Event],
        ) -> $crate::Result<()> {
            insert_task(conn, task).await?;
            <$store>::index_task(conn, task).await?;
            for r in reminders {
                insert_reminder(conn, r).await?;
            }
            insert_events(conn, events, task.updated_at).await
        }

        async fn apply_transition(
            conn: &mut <$db as sqlx::Database>::Connection,
            id: uuid::Uuid,
            input: &todo_domain::ReminderInput,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<Option<todo_domain::Reminder>> {
            let sql = format!("SELECT {REMINDER_COLUMNS} FROM reminders WHERE id = $1");
            let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db_err)? else {
                return Ok(None);
            };
            let mut reminder = read_reminder(&row)?;
            let next = reminder.status.apply(input);
            if next != reminder.status {
                let fired = if next == todo_domain::ReminderStatus::Triggered { Some(reminder.fired_at.unwrap_or(now)) } else { reminder.fired_at };
                // Monotonic: only a PENDING row moves, so a concurrent transition cannot be overwritten.
                let done = sqlx::query("UPDATE reminders SET status = $1, fired_at = $2 WHERE id = $3 AND status = 'PENDING'")
                    .bind(next.as_str())
                    .bind(fired)
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 1 {
                    reminder.status = next;
                    reminder.fired_at = fired;
                } else {
                    let row = sqlx::query(&sql).bind(id).fetch_one(&mut *conn).await.map_err(db_err)?;
                    reminder = read_reminder(&row)?;
                }
            }
            Ok(Some(reminder))
        }

        impl $store {
            /// Begins a write transaction after taking the store's place in its writer queue (every write
            /// transaction begins here; the few single-statement writes take `write_gate` themselves).
            async fn begin_write(&self) -> $crate::Result<$crate::common::WriteTx<$db>> {
                let gate = self.write_gate().await;
                let tx = self.pool.begin_with(Self::BEGIN_WRITE).await.map_err(db_err)?;
                Ok($crate::common::WriteTx::new(tx, gate))
            }

            fn after_commit(&self, outbox: bool, reminders: bool) {
                self.wake_other_processes(outbox, reminders);
                if outbox {
                    self.outbox.notify_waiters();
                }
                if reminders {
                    self.reminders.notify_waiters();
                }
            }

            /// Creates a task in a transaction of its own.
            async fn create_in_transaction(
                &self,
                task: &todo_domain::Task,
                reminders: &[todo_domain::Reminder],
                events: &[todo_events::Event],
            ) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                insert_created(&mut tx, task, reminders, events).await?;
                self.notify_outbox(&mut tx).await?;
                if !reminders.is_empty() {
                    self.notify_reminders(&mut tx).await?;
                }
                tx.commit().await.map_err(db_err)?;
                self.after_commit(!events.is_empty(), !reminders.is_empty());
                Ok(())
            }

            /// Replaces a task whose stored version is `expected_version`, with its events, in a transaction of its
            /// own.
            async fn update_in_transaction(
                &self,
                task: &todo_domain::Task,
                expected_version: i64,
                events: &[todo_events::Event],
            ) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                replace_task(&mut tx, task, expected_version).await?;
                Self::index_task(&mut tx, task).await?;
                insert_events(&mut tx, events, task.updated_at).await?;
                self.notify_outbox(&mut tx).await?;
                tx.commit().await.map_err(db_err)?;
                self.after_commit(!events.is_empty(), false);
                Ok(())
            }

            /// Inserts a reminder in a transaction of its own.
            async fn add_reminder_in_transaction(&self, reminder: &todo_domain::Reminder) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                insert_reminder(&mut tx, reminder).await?;
                self.notify_reminders(&mut tx).await?;
                tx.commit().await.map_err(db_err)?;
                self.after_commit(false, true);
                Ok(())
            }

            /// Stores a consumer's cursor in a statement of its own.
            async fn save_cursor_in_statement(
                &self,
                consumer: &str,
                seq: i64,
                updated_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let _gate = self.write_gate().await;
                sqlx::query(CURSOR_UPSERT)
                    .bind(consumer)
                    .bind(seq)
                    .bind(updated_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            /// Records the audit rows of events in a transaction of its own.
            async fn audit_in_transaction(
                &self,
                events: &[&todo_events::Event],
                recorded_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                let mut tx = self.begin_write().await?;
                let inserted = insert_audits(&mut tx, events, recorded_at).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(inserted)
            }

            /// Claims due reminders for a lease; an expired lease (crashed claimer) makes a row claimable again.
            async fn claim_due(&self, now_ms: i64, until_ms: i64, token: uuid::Uuid, limit: i64) -> $crate::Result<Vec<uuid::Uuid>> {
                let _gate = self.write_gate().await;
                let sql = format!(
                    "UPDATE reminders SET claimed_until = $1, claim_token = $2 WHERE id IN (SELECT id FROM reminders \
                     WHERE status = 'PENDING' AND emitted = 0 AND remind_ms <= $3 \
                     AND (claimed_until IS NULL OR claimed_until < $3) ORDER BY remind_ms LIMIT $4{}) RETURNING id",
                    Self::CLAIM_LOCK
                );
                let rows = sqlx::query(&sql)
                    .bind(until_ms)
                    .bind(token)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| r.try_get::<uuid::Uuid, _>("id").map_err(db_err)).collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn migrate(&self) -> $crate::Result<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> $crate::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
                Ok(())
            }

            async fn get_task(&self, owner: todo_domain::UserId, id: todo_domain::TaskId) -> $crate::Result<todo_domain::Task> {
                let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND owner = $2");
                let row = sqlx::query(&sql)
                    .bind(id.as_uuid())
                    .bind(owner.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?
                    .ok_or($crate::Error::NotFound)?;
                read_task(&row)
            }

            async fn list_tasks(&self, owner: todo_domain::UserId, q: &$crate::TaskQuery) -> $crate::Result<$crate::TaskPage> {
                use $crate::TaskSort;
                let sort_name = rows::sort_name(q.sort, q.descending);
                let cursor = q.cursor.as_deref().map(|c| rows::decode_cursor(c, &sort_name)).transpose()?;
                let limit = q.limit.clamp(1, 500);
                let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE owner = $1");
                let mut n = 1;
                let mut next = || { n += 1; format!("${n}") };
                enum Bind { Text(String), Int(i64), Date(chrono::NaiveDate), Uuid(uuid::Uuid) }
                let mut binds: Vec<Bind> = Vec::new();
                if let Some(status) = q.status {
                    sql.push_str(&format!(" AND status = {}", next()));
                    binds.push(Bind::Text(status.as_str().to_owned()));
                }
                if !q.priorities.is_empty() {
                    let ps: Vec<String> = q.priorities.iter().map(|p| { binds.push(Bind::Int(i64::from(p.rank()))); next() }).collect();
                    sql.push_str(&format!(" AND priority IN ({})", ps.join(", ")));
                }
                if !q.tags.is_empty() {
                    let clauses: Vec<String> = q.tags.iter().map(|t| {
                        let quoted = serde_json::to_string(t).unwrap_or_default();
                        let escaped = quoted.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                        binds.push(Bind::Text(format!("%{escaped}%")));
                        format!("tags LIKE {} ESCAPE '\\'", next())
                    }).collect();
                    let join = match q.tag_match { $crate::TagMatch::Any => " OR ", $crate::TagMatch::All => " AND " };
                    sql.push_str(&format!(" AND ({})", clauses.join(join)));
                }
                if let Some(from) = q.due_from {
                    sql.push_str(&format!(" AND due_date >= {}", next()));
                    binds.push(Bind::Date(from));
                }
                if let Some(to) = q.due_to {
                    sql.push_str(&format!(" AND due_date <= {}", next()));
                    binds.push(Bind::Date(to));
                }
                if let Some(search) = q.search.as_deref() {
                    let terms = rows::search_terms(search);
                    if terms.is_empty() {
                        return Ok($crate::TaskPage { items: Vec::new(), next_cursor: None });
                    }
                    let p = next();
                    sql.push_str(&format!(" AND {}", Self::search_clause(&p)));
                    binds.push(Bind::Text(Self::search_value(&terms)));
                }
                let (col, numeric) = match q.sort {
                    TaskSort::Due => ("due_ms", true),
                    TaskSort::Priority => ("priority", true),
                    TaskSort::Created => ("created_ms", true),
                    TaskSort::Title => ("title_key", false),
                };
                let (cmp, dir) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
                if let Some(c) = cursor {
                    let (pk, pk2, pid) = (next(), next(), next());
                    sql.push_str(&format!(" AND ({col} {cmp} {pk} OR ({col} = {pk2} AND id {cmp} {pid}))"));
                    for _ in 0..2 {
                        if numeric {
                            binds.push(Bind::Int(c.n.ok_or($crate::Error::InvalidCursor)?));
                        } else {
                            binds.push(Bind::Text(c.t.clone().ok_or($crate::Error::InvalidCursor)?));
                        }
                    }
                    binds.push(Bind::Uuid(c.id));
                }
                let pl = next();
                sql.push_str(&format!(" ORDER BY {col} {dir}, id {dir} LIMIT {pl}"));
                let mut query = sqlx::query(&sql).bind(owner.as_uuid());
                for b in binds {
                    query = match b {
                        Bind::Text(s) => query.bind(s),
                        Bind::Int(i) => query.bind(i),
                        Bind::Date(d) => query.bind(d),
                        Bind::Uuid(u) => query.bind(u),
                    };
                }
                let rows = query.bind(i64::from(limit) + 1).fetch_all(&self.pool).await.map_err(db_err)?;
                let mut items = rows.iter().map(read_task).collect::<$crate::Result<Vec<_>>>()?;
                let next_cursor = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(|t| rows::cursor_of(t, q.sort, q.descending))
                } else {
                    None
                };
                Ok($crate::TaskPage { items, next_cursor })
            }

            async fn create_task(&self, task: &todo_domain::Task, reminders: &[todo_domain::Reminder], events: &[todo_events::Event]) -> $crate::Result<()> {
                self.create(task, reminders, events).await
            }

            async fn update_task(&self, task: &todo_domain::Task, expected_version: i64, events: &[todo_events::Event]) -> $crate::Result<()> {
                self.update(task, expected_version, events).await
            }

            async fn update_task_with_reminders(
                &self,
                task: &todo_domain::Task,
                expected_version: i64,
                events: &[todo_events::Event],
                changes: &[$crate::ReminderChange],
            ) -> $crate::Result<u64> {
                let mut tx = self.begin_write().await?;
                replace_task(&mut tx, task, expected_version).await?;
                Self::index_task(&mut tx, task).await?;
                let mut changed = 0;
                for change in changes {
                    // Only a reminder of this task that is still PENDING and not fired moves; clearing the claim makes
                    // an in-flight fire at the old time lose (`fire_reminder` answers false) and the new time govern.
                    let (id, query) = match *change {
                        $crate::ReminderChange::Reschedule { id, remind_at } => (id, sqlx::query(
                            "UPDATE reminders SET remind_at = $1, remind_ms = $2, claimed_until = NULL, claim_token = NULL \
                             WHERE id = $3 AND task_id = $4 AND owner = $5 AND status = 'PENDING' AND emitted = 0",
                        )
                        .bind(remind_at)
                        .bind(remind_at.timestamp_millis())),
                        $crate::ReminderChange::Cancel { id } => (id, sqlx::query(
                            "UPDATE reminders SET status = 'CANCELLED', claimed_until = NULL, claim_token = NULL \
                             WHERE id = $1 AND task_id = $2 AND owner = $3 AND status = 'PENDING' AND emitted = 0",
                        )),
                    };
                    let done = query
                        .bind(id.as_uuid())
                        .bind(task.id.as_uuid())
                        .bind(task.owner.as_uuid())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    changed += done.rows_affected();
                }
                insert_events(&mut tx, events, task.updated_at).await?;
                self.notify_outbox(&mut tx).await?;
                if changed > 0 {
                    self.notify_reminders(&mut tx).await?;
                }
                tx.commit().await.map_err(db_err)?;
                self.after_commit(!events.is_empty(), changed > 0);
                Ok(changed)
            }

            async fn delete_task(&self, owner: todo_domain::UserId, id: todo_domain::TaskId, events: &[todo_events::Event]) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                Self::unindex_task(&mut tx, id.as_uuid()).await?;
                let done = sqlx::query("DELETE FROM tasks WHERE id = $1 AND owner = $2")
                    .bind(id.as_uuid())
                    .bind(owner.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() != 1 {
                    return Err($crate::Error::NotFound);
                }
                insert_events(&mut tx, events, chrono::Utc::now()).await?;
                self.notify_outbox(&mut tx).await?;
                tx.commit().await.map_err(db_err)?;
                self.after_commit(!events.is_empty(), false);
                Ok(())
            }

            async fn create_next_instance(
                &self,
                consumer: &str,
                event_id: uuid::Uuid,
                task: &todo_domain::Task,
                reminders: &[todo_domain::Reminder],
                events: &[todo_events::Event],
            ) -> $crate::Result<$crate::Applied> {
                let mut tx = self.begin_write().await?;
                let marked = sqlx::query(
                    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (consumer, event_id) DO NOTHING",
                )
                .bind(consumer)
                .bind(event_id)
                .bind(chrono::Utc::now())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                if marked.rows_affected() == 0 {
                    return Ok($crate::Applied::AlreadyApplied);
                }
                insert_task(&mut tx, task).await?;
                Self::index_task(&mut tx, task).await?;
                for r in reminders {
                    insert_reminder(&mut tx, r).await?;
                }
                insert_events(&mut tx, events, task.created_at).await?;
                self.notify_outbox(&mut tx).await?;
                if !reminders.is_empty() {
                    self.notify_reminders(&mut tx).await?;
                }
                tx.commit().await.map_err(db_err)?;
                self.after_commit(!events.is_empty(), !reminders.is_empty());
                Ok($crate::Applied::Applied)
            }

            async fn create_reminder(&self, reminder: &todo_domain::Reminder) -> $crate::Result<()> {
                self.add_reminder(reminder).await
            }

            async fn list_reminders(&self, owner: todo_domain::UserId, task: todo_domain::TaskId) -> $crate::Result<Vec<todo_domain::Reminder>> {
                let sql = format!("SELECT {REMINDER_COLUMNS} FROM reminders WHERE task_id = $1 AND owner = $2 ORDER BY remind_ms, id");
                let rows = sqlx::query(&sql).bind(task.as_uuid()).bind(owner.as_uuid()).fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(read_reminder).collect()
            }

            async fn cancel_reminder(&self, owner: todo_domain::UserId, id: todo_domain::ReminderId) -> $crate::Result<todo_domain::Reminder> {
                let mut tx = self.begin_write().await?;
                let owned = sqlx::query("SELECT id FROM reminders WHERE id = $1 AND owner = $2")
                    .bind(id.as_uuid()).bind(owner.as_uuid())
                    .fetch_optional(&mut *tx).await.map_err(db_err)?;
                if owned.is_none() {
                    return Err($crate::Error::NotFound);
                }
                let reminder = apply_transition(&mut tx, id.as_uuid(), &todo_domain::ReminderInput::Suppress, chrono::Utc::now())
                    .await?
                    .ok_or($crate::Error::NotFound)?;
                tx.commit().await.map_err(db_err)?;
                Ok(reminder)
            }

            async fn cancel_pending_reminders(&self, owner: todo_domain::UserId, task: todo_domain::TaskId, _now: chrono::DateTime<chrono::Utc>) -> $crate::Result<u64> {
                let _gate = self.write_gate().await;
                let done = sqlx::query("UPDATE reminders SET status = 'CANCELLED' WHERE task_id = $1 AND owner = $2 AND status = 'PENDING'")
                    .bind(task.as_uuid())
                    .bind(owner.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn transition_reminder(&self, id: todo_domain::ReminderId, input: &todo_domain::ReminderInput, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<todo_domain::Reminder> {
                let mut tx = self.begin_write().await?;
                let reminder = apply_transition(&mut tx, id.as_uuid(), input, now).await?.ok_or($crate::Error::NotFound)?;
                tx.commit().await.map_err(db_err)?;
                Ok(reminder)
            }

            async fn trigger_reminders(&self, triggers: &[$crate::ReminderTrigger], now: chrono::DateTime<chrono::Utc>) -> $crate::Result<Vec<Option<todo_domain::Reminder>>> {
                if triggers.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(triggers.len());
                for t in triggers {
                    let input = todo_domain::ReminderInput::Trigger { task_active: t.task_active, at: now };
                    let reminder = apply_transition(&mut tx, t.id.as_uuid(), &input, now).await?;
                    if reminder.as_ref().is_some_and(|r| r.status == todo_domain::ReminderStatus::Triggered) {
                        insert_audit(&mut tx, &t.event, now).await?;
                    }
                    out.push(reminder);
                }
                tx.commit().await.map_err(db_err)?;
                Ok(out)
            }

            async fn claim_due_reminders(&self, now: chrono::DateTime<chrono::Utc>, limit: u32, lease: std::time::Duration) -> $crate::Result<Vec<$crate::ReminderClaim>> {
                let token = uuid::Uuid::new_v4();
                let now_ms = now.timestamp_millis();
                let until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
                let ids = self.claim_due(now_ms, until, token, i64::from(limit)).await?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let sql = format!(
                        "SELECT r.id, r.task_id, r.owner, r.lead_seconds, r.remind_at, r.status, r.fired_at, r.created_at, \
                         t.title AS task_title, t.due_date AS task_due FROM reminders r LEFT JOIN tasks t ON t.id = r.task_id \
                         WHERE r.id = $1"
                    );
                    let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db_err)? else { continue };
                    let reminder = read_reminder(&row)?;
                    let title: Option<String> = row.try_get("task_title").map_err(db_err)?;
                    let due: Option<chrono::NaiveDate> = row.try_get("task_due").map_err(db_err)?;
                    out.push($crate::ReminderClaim {
                        reminder,
                        task_title: title.unwrap_or_default(),
                        due_date: due,
                        lease_token: token,
                    });
                }
                Ok(out)
            }

            async fn fire_reminder(&self, id: todo_domain::ReminderId, lease_token: uuid::Uuid, event: &todo_events::Event, now: chrono::DateTime<chrono::Utc>) -> $crate::Result<bool> {
                let mut tx = self.begin_write().await?;
                if !fire_claimed(&mut tx, id, lease_token, event, now).await? {
                    return Ok(false);
                }
                self.notify_outbox(&mut tx).await?;
                tx.commit().await.map_err(db_err)?;
                self.after_commit(true, false);
                Ok(true)
            }

            async fn fire_reminders(&self, fires: &[$crate::ReminderFire], now: chrono::DateTime<chrono::Utc>) -> $crate::Result<Vec<bool>> {
                if fires.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin_write().await?;
                let mut fired = Vec::with_capacity(fires.len());
                for f in fires {
                    fired.push(fire_claimed(&mut tx, f.id, f.lease_token, &f.event, now).await?);
                }
                let any = fired.iter().any(|&f| f);
                if any {
                    self.notify_outbox(&mut tx).await?;
                }
                tx.commit().await.map_err(db_err)?;
                self.after_commit(any, false);
                Ok(fired)
            }

            async fn next_reminder_at(&self) -> $crate::Result<Option<chrono::DateTime<chrono::Utc>>> {
                let row = sqlx::query("SELECT MIN(remind_ms) AS next FROM reminders WHERE status = 'PENDING' AND emitted = 0")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                let ms: Option<i64> = row.try_get("next").map_err(db_err)?;
                Ok(ms.and_then(chrono::DateTime::from_timestamp_millis))
            }

            fn reminders_changed(&self) -> $crate::Wakeup {
                $crate::Wakeup::armed(&self.reminders)
            }

            async fn record_audit(&self, event: &todo_events::Event, recorded_at: chrono::DateTime<chrono::Utc>) -> $crate::Result<bool> {
                Ok(self.record_audits(&[event], recorded_at).await? == 1)
            }

            async fn record_audits(&self, events: &[&todo_events::Event], recorded_at: chrono::DateTime<chrono::Utc>) -> $crate::Result<u64> {
                if events.is_empty() {
                    return Ok(0);
                }
                self.audit(events, recorded_at).await
            }

            async fn list_audit(&self, owner: todo_domain::UserId, limit: u32, cursor: Option<&str>) -> $crate::Result<$crate::AuditPage> {
                let before = match cursor {
                    Some(c) => c.parse::<i64>().map_err(|_| $crate::Error::InvalidCursor)?,
                    None => i64::MAX,
                };
                let limit = i64::from(limit.clamp(1, 500));
                let rows = sqlx::query(
                    "SELECT seq, event_id, event_type, task_id, payload, occurred_at, recorded_at FROM audit_log \
                     WHERE owner = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
                )
                .bind(owner.as_uuid())
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut items = Vec::with_capacity(rows.len());
                let mut last_seq = None;
                for row in rows.iter().take(limit as usize) {
                    let payload: String = row.try_get("payload").map_err(db_err)?;
                    last_seq = Some(row.try_get::<i64, _>("seq").map_err(db_err)?);
                    items.push($crate::AuditEntry {
                        event_id: row.try_get("event_id").map_err(db_err)?,
                        event_type: row.try_get("event_type").map_err(db_err)?,
                        task_id: row.try_get("task_id").map_err(db_err)?,
                        payload: serde_json::from_str(&payload).map_err(|e| $crate::Error::Corrupt(format!("audit payload: {e}")))?,
                        occurred_at: row.try_get("occurred_at").map_err(db_err)?,
                        recorded_at: row.try_get("recorded_at").map_err(db_err)?,
                    });
                }
                let next_cursor = if rows.len() as i64 > limit { last_seq.map(|s| s.to_string()) } else { None };
                Ok($crate::AuditPage { items, next_cursor })
            }

            async fn unpublished_outbox(&self, limit: usize) -> $crate::Result<Vec<$crate::OutboxRecord>> {
                let rows = sqlx::query(
                    "SELECT seq, event_id, topic, key, headers, payload, created_at FROM outbox \
                     WHERE published_at IS NULL ORDER BY seq LIMIT $1",
                )
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(read_outbox).collect()
            }

            async fn mark_published(&self, seqs: &[i64], now: chrono::DateTime<chrono::Utc>) -> $crate::Result<()> {
                let mut tx = self.begin_write().await?;
                for seq in seqs {
                    sqlx::query("UPDATE outbox SET published_at = $1 WHERE seq = $2")
                        .bind(now)
                        .bind(*seq)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(())
            }

            async fn outbox_backlog(&self) -> $crate::Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                row.try_get::<i64, _>("n").map_err(db_err)
            }

            async fn prune_outbox(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                readers: &[$crate::OutboxReader],
                limit: u32,
            ) -> $crate::Result<u64> {
                let mut tx = self.begin_write().await?;
                // Per read topic, the lowest cursor of its readers: every reader passed the rows up to it.
                let mut floors: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
                for reader in readers {
                    let row = sqlx::query("SELECT seq FROM consumer_cursors WHERE consumer = $1")
                        .bind(&reader.consumer)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    let seq = match row {
                        Some(r) => r.try_get::<i64, _>("seq").map_err(db_err)?,
                        None => 0,
                    };
                    floors.entry(reader.topic.as_str()).and_modify(|f| *f = (*f).min(seq)).or_insert(seq);
                }
                let mut left = i64::from(limit);
                // The highest sequence deleted, for `outbox_pruned`.
                let mut through = 0_i64;
                for (topic, floor) in &floors {
                    if left <= 0 {
                        break;
                    }
                    let deleted: Vec<i64> = sqlx::query_scalar(
                        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE topic = $1 AND seq <= $2 \
                         AND created_at < $3 AND seq < (SELECT MAX(seq) FROM outbox WHERE topic = $1) \
                         ORDER BY seq LIMIT $4) RETURNING seq",
                    )
                    .bind(*topic)
                    .bind(*floor)
                    .bind(before)
                    .bind(left)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    through = deleted.iter().copied().fold(through, i64::max);
                    left -= i64::try_from(deleted.len()).unwrap_or(left);
                }
                if left > 0 {
                    // Published rows of the topics no reader reads from the outbox.
                    let mut sql = String::from(
                        "DELETE FROM outbox WHERE seq IN (SELECT o.seq FROM outbox o WHERE o.published_at IS NOT NULL \
                         AND o.published_at < $1 AND o.created_at < $1 \
                         AND o.seq < (SELECT MAX(m.seq) FROM outbox m WHERE m.topic = o.topic)",
                    );
                    let mut n = 1;
                    for _ in &floors {
                        n += 1;
                        sql.push_str(&format!(" AND o.topic <> ${n}"));
                    }
                    sql.push_str(&format!(" ORDER BY o.seq LIMIT ${}) RETURNING seq", n + 1));
                    let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(before);
                    for topic in floors.keys() {
                        query = query.bind(*topic);
                    }
                    let deleted = query.bind(left).fetch_all(&mut *tx).await.map_err(db_err)?;
                    through = deleted.iter().copied().fold(through, i64::max);
                    left -= i64::try_from(deleted.len()).unwrap_or(left);
                }
                if through > 0 {
                    sqlx::query("UPDATE outbox_pruned SET seq = $1 WHERE id = 1 AND seq < $1")
                        .bind(through)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)?;
                Ok(u64::try_from(i64::from(limit) - left).unwrap_or(0))
            }

            async fn try_acquire_relay_lease(&self) -> $crate::Result<Option<$crate::RelayLease>> {
                self.relay_lease().await
            }

            fn outbox_changed(&self) -> $crate::Wakeup {
                $crate::Wakeup::armed(&self.outbox)
            }

            async fn outbox_after(&self, topic: &str, after: i64, limit: usize) -> $crate::Result<Vec<$crate::OutboxRecord>> {
                let rows = sqlx::query(
                    "SELECT seq, event_id, topic, key, headers, payload, created_at FROM outbox \
                     WHERE topic = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(topic)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(read_outbox).collect()
            }

            async fn outbox_pruned_through(&self) -> $crate::Result<i64> {
                sqlx::query_scalar("SELECT seq FROM outbox_pruned WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)
            }

            async fn outbox_bounds(&self, topic: &str) -> $crate::Result<(i64, i64)> {
                // Two subqueries, not `MIN(seq), MAX(seq)` in one: SQLite answers a lone MIN or MAX from the
                // (topic, seq) index in one step, both at once by scanning every row of the topic.
                let row = sqlx::query(
                    "SELECT (SELECT MIN(seq) FROM outbox WHERE topic = $1) AS lo, \
                     (SELECT MAX(seq) FROM outbox WHERE topic = $1) AS hi",
                )
                .bind(topic)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                let lo: Option<i64> = row.try_get("lo").map_err(db_err)?;
                let hi: Option<i64> = row.try_get("hi").map_err(db_err)?;
                Ok((lo.unwrap_or(0), hi.unwrap_or(0)))
            }

            async fn append_outbox(&self, records: &[$crate::NewOutboxRecord]) -> $crate::Result<Vec<i64>> {
                let now = chrono::Utc::now();
                let mut tx = self.begin_write().await?;
                let mut seqs = Vec::with_capacity(records.len());
                for r in records {
                    let event_id = todo_events::binding::decode(&r.headers, &r.payload).ok().map(|e| e.id());
                    let row = sqlx::query(
                        "INSERT INTO outbox (event_id, topic, key, headers, payload, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                    )
                    .bind(event_id)
                    .bind(&r.topic)
                    .bind(&r.key)
                    .bind(rows::headers_to_json(&r.headers))
                    .bind(&r.payload)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    seqs.push(row.try_get::<i64, _>("seq").map_err(db_err)?);
                }
                self.notify_outbox(&mut tx).await?;
                tx.commit().await.map_err(db_err)?;
                self.after_commit(true, false);
                Ok(seqs)
            }

            async fn cursor(&self, consumer: &str) -> $crate::Result<i64> {
                let row = sqlx::query("SELECT seq FROM consumer_cursors WHERE consumer = $1")
                    .bind(consumer)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                match row {
                    Some(r) => r.try_get::<i64, _>("seq").map_err(db_err),
                    None => Ok(0),
                }
            }

            async fn set_cursor(&self, consumer: &str, seq: i64) -> $crate::Result<()> {
                self.save_cursor(consumer, seq, chrono::Utc::now()).await
            }
        }
    };
}

pub(crate) use impl_store;
