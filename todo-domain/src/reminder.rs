//! Reminders: lead times, when a reminder fires, and the reminder state machine.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ReminderId, TaskId, UserId};
use crate::values::{Due, ValidationError};

/// The longest lead time: 365 days.
pub const MAX_LEAD_SECONDS: i64 = 365 * 86_400;

/// How long before the due instant a reminder fires: positive, at most 365 days, whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeadTime(i64);

fn lead_err(message: impl Into<String>) -> ValidationError {
    ValidationError::new("lead_time", message)
}

impl LeadTime {
    /// Parses a lead time: `30min`, `1h`, `2 hours`, `1d`, `1 week`, compounds such as `1h30min`, or ISO 8601
    /// durations such as `PT30M`, `P1D`, `P1W`, `P1DT12H`.
    ///
    /// ```
    /// use todo_domain::LeadTime;
    /// assert_eq!(LeadTime::parse("2 hours")?.seconds(), 7200);
    /// assert_eq!(LeadTime::parse("PT30M")?, LeadTime::parse("30min")?);
    /// assert_eq!(LeadTime::parse("P1D")?.to_string(), "1d");
    /// assert!(LeadTime::parse("0min").is_err());
    /// # Ok::<(), todo_domain::ValidationError>(())
    /// ```
    ///
    /// # Errors
    /// Field `lead_time` when the text is not a duration, uses years or months (which have no fixed length), is
    /// zero, or is longer than 365 days.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(lead_err("must not be empty"));
        }
        if t.len() > 100 {
            return Err(lead_err("must be at most 100 bytes"));
        }
        let lower = t.to_ascii_lowercase();
        let seconds = if lower.starts_with('p') {
            parse_iso(&lower)?
        } else {
            parse_human(&lower)?
        };
        Self::from_seconds(seconds)
    }

    /// A lead time of `seconds` seconds.
    ///
    /// # Errors
    /// Field `lead_time` unless `1 <= seconds <= 365 days`.
    pub fn from_seconds(seconds: i64) -> Result<Self, ValidationError> {
        if seconds <= 0 {
            return Err(lead_err("must be positive"));
        }
        if seconds > MAX_LEAD_SECONDS {
            return Err(lead_err("must be at most 365 days"));
        }
        Ok(Self(seconds))
    }

    /// The lead time in seconds.
    pub fn seconds(&self) -> i64 {
        self.0
    }

    /// The lead time as a duration.
    pub fn duration(&self) -> Duration {
        Duration::seconds(self.0)
    }
}

fn parse_human(s: &str) -> Result<i64, ValidationError> {
    let bad = || {
        lead_err(format!(
            "`{s}` is not a lead time (examples: 30min, 1h, 2 hours, 1d, 1 week, PT30M, P1D)"
        ))
    };
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut parts = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if s[i..].starts_with("and ") {
            i += 4;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i || i - start > 9 {
            return Err(bad());
        }
        let n: i64 = s[start..i].parse().map_err(|_| bad())?;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &s[ustart..i] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
            "d" | "day" | "days" => 86_400,
            "w" | "wk" | "wks" | "week" | "weeks" => 604_800,
            "mo" | "month" | "months" | "y" | "yr" | "year" | "years" => {
                return Err(lead_err(
                    "years and months have no fixed length: use days or weeks",
                ));
            }
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| lead_err("must be at most 365 days"))?;
        parts += 1;
    }
    if parts == 0 {
        return Err(bad());
    }
    Ok(total)
}

fn parse_iso(s: &str) -> Result<i64, ValidationError> {
    let bad = || {
        lead_err(format!(
            "`{s}` is not an ISO 8601 duration such as PT30M or P1D"
        ))
    };
    let body = s.strip_prefix('p').ok_or_else(bad)?;
    let (date, time) = match body.split_once('t') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    let mut eat = |text: &str, units: &[(u8, i64)]| -> Result<(), ValidationError> {
        let mut rest = text;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 || digits >= rest.len() {
                return Err(bad());
            }
            let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
            let designator = rest.as_bytes()[digits];
            if (designator == b'y' || designator == b'm') && units.iter().all(|u| u.0 != b'm') {
                return Err(lead_err(
                    "years and months have no fixed length: use days or weeks",
                ));
            }
            let pos = units[next_unit..]
                .iter()
                .position(|u| u.0 == designator)
                .ok_or_else(bad)?;
            let unit = units[next_unit + pos].1;
            next_unit += pos + 1;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| lead_err("must be at most 365 days"))?;
            parts += 1;
            rest = &rest[digits + 1..];
        }
        Ok(())
    };
    eat(date, &[(b'w', 604_800), (b'd', 86_400)])?;
    match time {
        Some("") => return Err(bad()),
        Some(t) => eat(t, &[(b'h', 3_600), (b'm', 60), (b's', 1)])?,
        None => {}
    }
    if parts == 0 {
        return Err(bad());
    }
    Ok(total)
}

impl fmt::Display for LeadTime {
    /// The compact human form: `30min`, `1h`, `1d`, `1w`, `1h30min`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (unit, name) in [
            (604_800, "w"),
            (86_400, "d"),
            (3_600, "h"),
            (60, "min"),
            (1, "s"),
        ] {
            let n = rest / unit;
            if n > 0 {
                write!(f, "{n}{name}")?;
                rest -= n * unit;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for LeadTime {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for LeadTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for LeadTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LeadTime::from_seconds(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// When a reminder with `lead` fires for a task due `due`: the due instant minus the lead, in UTC.
///
/// ```
/// use chrono::{NaiveDate, NaiveTime, TimeZone as _, Utc};
/// use todo_domain::{remind_at, Due, LeadTime, TimeZone};
/// let due = Due {
///     date: NaiveDate::from_ymd_opt(2026, 2, 10).unwrap(),
///     time: NaiveTime::from_hms_opt(10, 0, 0),
///     zone: TimeZone::utc(),
/// };
/// let now = Utc.with_ymd_and_hms(2026, 2, 9, 14, 30, 0).unwrap();
/// let at = remind_at(&due, &LeadTime::parse("30min")?, now)?;
/// assert_eq!(at, Utc.with_ymd_and_hms(2026, 2, 10, 9, 30, 0).unwrap());
/// # Ok::<(), todo_domain::ValidationError>(())
/// ```
///
/// # Errors
/// Field `remind_at` when that instant is not after `now` (the reminder would fire in the past).
pub fn remind_at(
    due: &Due,
    lead: &LeadTime,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ValidationError> {
    absolute_remind_at(due.instant() - lead.duration(), now)
}

/// Checks an absolute reminder time.
///
/// # Errors
/// Field `remind_at` when `at` is not after `now` (the reminder would fire in the past).
pub fn absolute_remind_at(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ValidationError> {
    if at <= now {
        return Err(ValidationError::new(
            "remind_at",
            format!(
                "would fire in the past ({} is not after now, {})",
                at.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    Ok(at)
}

/// Where a reminder is in its life: `PENDING`, then `TRIGGERED` or `CANCELLED` for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReminderStatus {
    /// Waiting for its time.
    #[default]
    Pending,
    /// Fired while its task was active (terminal).
    Triggered,
    /// Suppressed because its task was completed or deleted (terminal).
    Cancelled,
}

/// What happens to a reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderInput {
    /// Its time arrived (`reminder.triggered`); `task_active` says whether the task was still active (not completed
    /// and not deleted) when the trigger was handled.
    Trigger {
        /// Whether the task was active.
        task_active: bool,
        /// When it fired.
        at: DateTime<Utc>,
    },
    /// Its task was completed or deleted (`task.completed`, `task.deleted`).
    Suppress,
}

impl ReminderStatus {
    /// The stored name: `PENDING`, `TRIGGERED` or `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderStatus::Pending => "PENDING",
            ReminderStatus::Triggered => "TRIGGERED",
            ReminderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Whether no input changes this status any more.
    pub fn is_terminal(self) -> bool {
        self != ReminderStatus::Pending
    }

    /// The status after `input`. Pure and idempotent; terminal states absorb every input.
    ///
    /// | from | input | to |
    /// |---|---|---|
    /// | `PENDING` | trigger, task active | `TRIGGERED` |
    /// | `PENDING` | trigger, task completed or deleted | `CANCELLED` |
    /// | `PENDING` | suppress | `CANCELLED` |
    /// | `TRIGGERED`, `CANCELLED` | anything | unchanged |
    ///
    /// Order-independence: any two inputs commute except an active trigger against an inactive one (a suppression
    /// or a trigger that saw the task inactive), and such a pair cannot be handled in both orders: the consumer
    /// reads `task_active` from the task when it handles the trigger, the store marks the task completed (or
    /// deletes it) before `task.completed`/`task.deleted` is published, and a task never becomes active again. So
    /// every observable delivery order, redeliveries included, ends in the state the first decision chose.
    ///
    /// ```
    /// use todo_domain::{ReminderInput, ReminderStatus};
    /// let s = ReminderStatus::Pending.apply(&ReminderInput::Suppress);
    /// assert_eq!(s, ReminderStatus::Cancelled);
    /// assert_eq!(s.apply(&ReminderInput::Suppress), s);
    /// ```
    pub fn apply(self, input: &ReminderInput) -> ReminderStatus {
        match (self, input) {
            (
                ReminderStatus::Pending,
                ReminderInput::Trigger {
                    task_active: true, ..
                },
            ) => ReminderStatus::Triggered,
            (
                ReminderStatus::Pending,
                ReminderInput::Trigger {
                    task_active: false, ..
                },
            )
            | (ReminderStatus::Pending, ReminderInput::Suppress) => ReminderStatus::Cancelled,
            (terminal, _) => terminal,
        }
    }
}

impl fmt::Display for ReminderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`ReminderStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reminder status `{0}` (expected PENDING, TRIGGERED or CANCELLED)")]
pub struct ParseReminderStatusError(pub String);

impl std::str::FromStr for ReminderStatus {
    type Err = ParseReminderStatusError;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        [
            ReminderStatus::Pending,
            ReminderStatus::Triggered,
            ReminderStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(t))
        .ok_or_else(|| ParseReminderStatusError(s.to_owned()))
    }
}

/// A reminder of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// Its id.
    pub id: ReminderId,
    /// The task it reminds of.
    pub task_id: TaskId,
    /// The task's owner.
    pub owner: UserId,
    /// The lead time it was set with, or `None` for an absolute time.
    pub lead: Option<LeadTime>,
    /// When it fires.
    pub remind_at: DateTime<Utc>,
    /// Its state.
    pub status: ReminderStatus,
    /// When it fired (set on the transition to `TRIGGERED`).
    pub fired_at: Option<DateTime<Utc>>,
    /// When it was set.
    pub created_at: DateTime<Utc>,
}

impl Reminder {
    /// A pending reminder `lead` before `due`.
    ///
    /// # Errors
    /// Field `remind_at` when it would fire in the past.
    pub fn with_lead(
        id: ReminderId,
        task_id: TaskId,
        owner: UserId,
        due: &Due,
        lead: LeadTime,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let at = remind_at(due, &lead, now)?;
        Ok(Self::pending(id, task_id, owner, Some(lead), at, now))
    }

    /// A pending reminder at an absolute time.
    ///
    /// # Errors
    /// Field `remind_at` when `at` is not after `now`.
    pub fn at(
        id: ReminderId,
        task_id: TaskId,
        owner: UserId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        let at = absolute_remind_at(at, now)?;
        Ok(Self::pending(id, task_id, owner, None, at, now))
    }

    fn pending(
        id: ReminderId,
        task_id: TaskId,
        owner: UserId,
        lead: Option<LeadTime>,
        remind_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            task_id,
            owner,
            lead,
            remind_at,
            status: ReminderStatus::Pending,
            fired_at: None,
            created_at: now,
        }
    }

    /// Applies an input ([`ReminderStatus::apply`]); records `fired_at` on the transition to `TRIGGERED`.
    /// Returns whether anything changed.
    pub fn apply(&mut self, input: &ReminderInput) -> bool {
        let next = self.status.apply(input);
        if next == self.status {
            return false;
        }
        if let (ReminderStatus::Triggered, ReminderInput::Trigger { at, .. }) = (next, input) {
            self.fired_at = Some(*at);
        }
        self.status = next;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime, TimeZone as _};
    use proptest::prelude::*;

    fn secs(s: &str) -> i64 {
        LeadTime::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .seconds()
    }

    #[test]
    fn lead_times_parse_in_human_and_iso_forms() {
        assert_eq!(secs("30min"), 1800);
        assert_eq!(secs("30 minutes"), 1800);
        assert_eq!(secs("1h"), 3600);
        assert_eq!(secs("2 hours"), 7200);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs("1 week"), 604_800);
        assert_eq!(secs("1h30min"), 5400);
        assert_eq!(secs("1 hour and 15 minutes"), 4500);
        assert_eq!(secs("PT30M"), 1800);
        assert_eq!(secs("P1D"), 86_400);
        assert_eq!(secs("p1w"), 604_800);
        assert_eq!(secs("P1DT12H"), 129_600);
        assert_eq!(secs("PT1H30M15S"), 5415);
        assert_eq!(secs("365d"), MAX_LEAD_SECONDS);
    }

    #[test]
    fn invalid_lead_times_are_errors() {
        for bad in [
            "", "soon", "0min", "-5min", "366d", "53 weeks", "P1M", "P1Y", "PT", "P", "PT5X",
            "PT1M1H", "1 month", "min", "30",
        ] {
            let e = LeadTime::parse(bad).expect_err(bad);
            assert_eq!(e.field, "lead_time", "{bad}");
        }
        assert!(
            LeadTime::parse("P1M")
                .unwrap_err()
                .message
                .contains("no fixed length")
        );
        assert!(
            LeadTime::parse("400d")
                .unwrap_err()
                .message
                .contains("365 days")
        );
        assert!(LeadTime::from_seconds(0).is_err());
        assert!(LeadTime::from_seconds(MAX_LEAD_SECONDS + 1).is_err());
    }

    #[test]
    fn lead_time_displays_compactly() {
        let show = |s: i64| LeadTime::from_seconds(s).unwrap().to_string();
        assert_eq!(show(1800), "30min");
        assert_eq!(show(3600), "1h");
        assert_eq!(show(86_400), "1d");
        assert_eq!(show(604_800), "1w");
        assert_eq!(show(5400), "1h30min");
        assert_eq!(show(8 * 86_400 + 1), "1w1d1s");
    }

    fn due(h: u32, m: u32) -> Due {
        Due {
            date: NaiveDate::from_ymd_opt(2026, 2, 10).unwrap(),
            time: NaiveTime::from_hms_opt(h, m, 0),
            zone: crate::TimeZone::parse("Europe/Berlin").unwrap(),
        }
    }

    #[test]
    fn remind_at_is_due_instant_minus_lead_in_utc() {
        let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let at = remind_at(&due(10, 0), &LeadTime::parse("30min").unwrap(), now).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 2, 10, 8, 30, 0).unwrap());
    }

    #[test]
    fn a_reminder_in_the_past_is_an_error() {
        let now = Utc.with_ymd_and_hms(2026, 2, 10, 8, 45, 0).unwrap();
        let e = remind_at(&due(10, 0), &LeadTime::parse("1h").unwrap(), now).unwrap_err();
        assert_eq!(e.field, "remind_at");
        assert!(e.message.contains("would fire in the past"), "{e}");
        assert!(absolute_remind_at(now, now).is_err());
        assert_eq!(
            absolute_remind_at(now + Duration::seconds(1), now),
            Ok(now + Duration::seconds(1))
        );
    }

    #[test]
    fn reminder_status_names_round_trip() {
        for s in [
            ReminderStatus::Pending,
            ReminderStatus::Triggered,
            ReminderStatus::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<ReminderStatus>(), Ok(s));
            assert_eq!(s.as_str().to_lowercase().parse::<ReminderStatus>(), Ok(s));
        }
        assert!("DONE".parse::<ReminderStatus>().is_err());
    }

    #[test]
    fn state_machine_transitions() {
        let at = Utc.with_ymd_and_hms(2026, 2, 10, 9, 30, 0).unwrap();
        let active = ReminderInput::Trigger {
            task_active: true,
            at,
        };
        let inactive = ReminderInput::Trigger {
            task_active: false,
            at,
        };
        use ReminderStatus::*;
        assert_eq!(Pending.apply(&active), Triggered);
        assert_eq!(Pending.apply(&inactive), Cancelled);
        assert_eq!(Pending.apply(&ReminderInput::Suppress), Cancelled);
        for terminal in [Triggered, Cancelled] {
            for input in [active, inactive, ReminderInput::Suppress] {
                assert_eq!(terminal.apply(&input), terminal);
            }
        }
    }

    #[test]
    fn reminder_records_when_it_fired() {
        let now = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let mut r = Reminder::with_lead(
            ReminderId::new(),
            TaskId::new(),
            UserId::new(),
            &due(10, 0),
            LeadTime::parse("1h").unwrap(),
            now,
        )
        .unwrap();
        assert_eq!(r.status, ReminderStatus::Pending);
        let at = r.remind_at;
        assert!(r.apply(&ReminderInput::Trigger {
            task_active: true,
            at
        }));
        assert_eq!(
            (r.status, r.fired_at),
            (ReminderStatus::Triggered, Some(at))
        );
        assert!(!r.apply(&ReminderInput::Suppress));
        assert_eq!(r.status, ReminderStatus::Triggered);
        assert!(Reminder::at(ReminderId::new(), TaskId::new(), UserId::new(), now, now).is_err());
    }

    fn arb_input() -> impl Strategy<Value = ReminderInput> {
        prop_oneof![
            Just(ReminderInput::Suppress),
            (any::<bool>(), 0i64..1_000_000).prop_map(|(task_active, s)| ReminderInput::Trigger {
                task_active,
                at: Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap(),
            }),
        ]
    }

    fn arb_status() -> impl Strategy<Value = ReminderStatus> {
        prop::sample::select(vec![
            ReminderStatus::Pending,
            ReminderStatus::Triggered,
            ReminderStatus::Cancelled,
        ])
    }

    fn active(i: &ReminderInput) -> bool {
        matches!(
            i,
            ReminderInput::Trigger {
                task_active: true,
                ..
            }
        )
    }

    /// Events a consumer can observe: once the task is inactive (a suppression or an inactive trigger was
    /// handled), no trigger sees it active again.
    fn consistent(history: &[ReminderInput]) -> Vec<ReminderInput> {
        let mut out = Vec::new();
        let mut inactive = false;
        for i in history {
            let i = match *i {
                ReminderInput::Trigger { at, .. } if inactive => ReminderInput::Trigger {
                    task_active: false,
                    at,
                },
                other => other,
            };
            if !active(&i) {
                inactive = true;
            }
            out.push(i);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn transitions_are_idempotent(s in arb_status(), i in arb_input()) {
            let once = s.apply(&i);
            prop_assert_eq!(once.apply(&i), once);
        }

        #[test]
        fn transitions_commute_except_active_against_inactive(
            s in arb_status(), a in arb_input(), b in arb_input(),
        ) {
            // the one pair that cannot be observed in both orders (see `ReminderStatus::apply`)
            prop_assume!(active(&a) == active(&b) || (s.is_terminal()));
            prop_assert_eq!(s.apply(&a).apply(&b), s.apply(&b).apply(&a));
        }

        #[test]
        fn terminal_states_absorb(s in arb_status(), inputs in prop::collection::vec(arb_input(), 0..8)) {
            let end = inputs.iter().fold(s, |st, i| st.apply(i));
            if s.is_terminal() {
                prop_assert_eq!(end, s);
            }
        }

        #[test]
        fn any_observable_history_with_redeliveries_ends_as_its_first_decision(
            raw in prop::collection::vec(arb_input(), 1..10),
            dups in prop::collection::vec((0usize..10, 0usize..12), 0..6),
        ) {
            let history = consistent(&raw);
            // redeliver some inputs later (at-least-once delivery)
            let mut delivered = history.clone();
            for (from, to) in dups {
                let i = history[from % history.len()];
                let pos = (to % (delivered.len() + 1)).max(1 + from % history.len());
                delivered.insert(pos.min(delivered.len()), i);
            }
            let end = delivered.iter().fold(ReminderStatus::Pending, |st, i| st.apply(i));
            let expected = if history.iter().any(active) { ReminderStatus::Triggered } else { ReminderStatus::Cancelled };
            prop_assert_eq!(end, expected);
        }

        #[test]
        fn a_reminder_never_fires_after_its_due_instant(
            minutes in 1i64..(365 * 24 * 60),
            hour in 0u32..24,
        ) {
            let lead = LeadTime::from_seconds(minutes * 60).unwrap();
            let d = due(hour, 0);
            let now = d.instant() - Duration::days(400);
            let at = remind_at(&d, &lead, now).unwrap();
            prop_assert!(at < d.instant());
            prop_assert_eq!(d.instant() - at, lead.duration());
        }

        #[test]
        fn lead_time_display_parses_back(s in 1i64..=MAX_LEAD_SECONDS) {
            let lead = LeadTime::from_seconds(s).unwrap();
            prop_assert_eq!(LeadTime::parse(&lead.to_string()).unwrap(), lead);
        }

        #[test]
        fn no_input_makes_the_lead_time_parser_panic(s in "\\PC{0,40}") {
            let _ = LeadTime::parse(&s);
        }
    }
}
