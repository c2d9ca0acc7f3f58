//! Recurrence rules: parsing (friendly phrases and RFC 5545 RRULE text), canonical RRULE display, and the next
//! occurrence of a series. See `docs/recurrence.md` for the semantics table.

use std::fmt;
use std::ops::ControlFlow;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Utc};

use crate::values::{Due, TimeZone, ValidationError};

/// How often a rule's periods repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// `FREQ=DAILY`
    Daily,
    /// `FREQ=WEEKLY`
    Weekly,
    /// `FREQ=MONTHLY`
    Monthly,
    /// `FREQ=YEARLY`
    Yearly,
}

impl Frequency {
    /// The RRULE name, e.g. `DAILY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        }
    }
}

/// The end of a series given by `UNTIL` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Until {
    /// `UNTIL=20261231`: the last local date.
    Date(NaiveDate),
    /// `UNTIL=20261231T235959Z`: the last instant.
    Instant(DateTime<Utc>),
    /// `UNTIL=20261231T235959`: the last local date and time, in the task's zone.
    Local(NaiveDateTime),
}

/// A recurrence rule: a subset of RFC 5545 `RRULE` plus RFC 7529 `SKIP=BACKWARD` (month-end clamping).
///
/// Build one with [`Recurrence::parse`]; [`Display`](fmt::Display) writes the canonical RRULE text, which parses
/// back to an equal rule.
///
/// ```
/// use todo_domain::Recurrence;
/// let r = Recurrence::parse("every monday and thursday")?;
/// assert_eq!(r.to_string(), "FREQ=WEEKLY;BYDAY=MO,TH");
/// assert_eq!(Recurrence::parse(&r.to_string())?, r);
/// assert_eq!(Recurrence::parse("RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3")?.count(), Some(3));
/// assert!(Recurrence::parse("FREQ=MONTHLY;BYSETPOS=1").unwrap_err().message.contains("BYSETPOS"));
/// # Ok::<(), todo_domain::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Recurrence {
    freq: Frequency,
    interval: u32,
    /// 1..=12, sorted, unique.
    by_month: Vec<u8>,
    /// -31..=31 without 0, canonical order (positive ascending, then negative by magnitude).
    by_month_day: Vec<i8>,
    /// (ordinal, weekday 0 = Monday); ordinal 0 = every such weekday. Canonical order.
    by_day: Vec<(i8, u8)>,
    count: Option<u32>,
    until: Option<Until>,
    /// 0 = Monday.
    wkst: u8,
    skip_backward: bool,
    compiled: Compiled,
}

/// Bit masks derived from the rule parts, for fast matching. A pure function of the parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Compiled {
    months: u16,
    md_pos: u32,
    md_neg: u32,
    wd_all: u8,
    wd_pos: [u64; 7],
    wd_neg: [u64; 7],
    wd_ordinals: bool,
}

/// The largest `INTERVAL` accepted.
pub const MAX_INTERVAL: u32 = 1000;
/// The largest `COUNT` accepted.
pub const MAX_COUNT: u32 = 1_000_000;
const MAX_INPUT: usize = 1000;
const DAY_NAMES: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
const LONG_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn err(message: impl Into<String>) -> ValidationError {
    ValidationError::new("recurrence", message)
}

impl Recurrence {
    fn simple(freq: Frequency, interval: u32) -> Self {
        let mut r = Self {
            freq,
            interval,
            by_month: Vec::new(),
            by_month_day: Vec::new(),
            by_day: Vec::new(),
            count: None,
            until: None,
            wkst: 0,
            skip_backward: false,
            compiled: Compiled::default(),
        };
        r.compile();
        r
    }

    /// Parses a rule. Accepted forms (case-insensitive):
    ///
    /// - `daily`, `weekly`, `monthly`, `yearly` (`annually`), `weekdays`, `every day|week|month|year`,
    ///   `every other day|week|month|year`, `every N days|weeks|months|years`;
    /// - `every monday and thursday` (full or three-letter day names, separated by `,`, `and` or spaces);
    /// - RFC 5545 RRULE text, with or without the `RRULE:` prefix: `FREQ` (DAILY, WEEKLY, MONTHLY, YEARLY),
    ///   `INTERVAL`, `BYDAY` (ordinals such as `1MO` or `-1FR` with MONTHLY and YEARLY), `BYMONTHDAY` (negative
    ///   too), `BYMONTH`, `COUNT`, `UNTIL`, `WKST`, and RFC 7529 `RSCALE=GREGORIAN;SKIP=OMIT|BACKWARD`.
    ///
    /// # Errors
    /// Field `recurrence`, with a message that names the offending part: an unsupported part (`BYSETPOS`,
    /// `BYWEEKNO`, `BYYEARDAY`, `BYHOUR`, ...), an unsupported `FREQ`, a malformed or out-of-range value, a
    /// repeated part, `COUNT` together with `UNTIL`, or a combination RFC 5545 forbids.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(err("must not be empty"));
        }
        if t.len() > MAX_INPUT {
            return Err(err(format!("must be at most {MAX_INPUT} bytes")));
        }
        if let Some(r) = parse_phrase(t)? {
            return Ok(r);
        }
        parse_rrule(t)
    }

    /// The `COUNT` part: how many occurrences the series has in total.
    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// The `UNTIL` part.
    pub fn until(&self) -> Option<Until> {
        self.until
    }

    /// The `FREQ` part.
    pub fn frequency(&self) -> Frequency {
        self.freq
    }

    /// The `INTERVAL` part (1 when absent).
    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// Whether the rule clamps a missing day of month to the month's last day (`SKIP=BACKWARD`).
    pub fn clamps_month_end(&self) -> bool {
        self.skip_backward
    }

    fn compile(&mut self) {
        let mut c = Compiled::default();
        for &m in &self.by_month {
            c.months |= 1 << m;
        }
        for &d in &self.by_month_day {
            if d > 0 {
                c.md_pos |= 1 << d;
            } else {
                c.md_neg |= 1 << (-d);
            }
        }
        for &(ord, wd) in &self.by_day {
            let w = usize::from(wd);
            if ord == 0 {
                c.wd_all |= 1 << wd;
            } else if ord > 0 {
                c.wd_pos[w] |= 1 << ord;
                c.wd_ordinals = true;
            } else {
                c.wd_neg[w] |= 1 << (-ord);
                c.wd_ordinals = true;
            }
        }
        self.compiled = c;
    }

    /// Sorts, deduplicates and checks the parts; computes the masks.
    fn finish(mut self, rscale: bool) -> Result<Self, ValidationError> {
        self.by_month.sort_unstable();
        self.by_month.dedup();
        self.by_month_day
            .sort_unstable_by_key(|&d| (d < 0, d.unsigned_abs()));
        self.by_month_day.dedup();
        self.by_day
            .sort_unstable_by_key(|&(o, w)| (o != 0, o < 0, o.unsigned_abs(), w));
        self.by_day.dedup();
        if self.count.is_some() && self.until.is_some() {
            return Err(err("COUNT and UNTIL must not both be given"));
        }
        if matches!(self.freq, Frequency::Daily | Frequency::Weekly)
            && self.by_day.iter().any(|&(o, _)| o != 0)
        {
            return Err(err(format!(
                "BYDAY ordinals (such as 1MO) need FREQ=MONTHLY or FREQ=YEARLY, not FREQ={}",
                self.freq.as_str()
            )));
        }
        if self.freq == Frequency::Weekly && !self.by_month_day.is_empty() {
            return Err(err("BYMONTHDAY must not be used with FREQ=WEEKLY"));
        }
        let month_scope = self.freq == Frequency::Monthly || !self.by_month.is_empty();
        if let Some(&(o, _)) = self
            .by_day
            .iter()
            .find(|&&(o, _)| month_scope && o.unsigned_abs() > 5)
        {
            return Err(err(format!(
                "BYDAY ordinal {o} is out of range: a month has at most 5 of each weekday"
            )));
        }
        if self.skip_backward {
            if !rscale {
                return Err(err("SKIP needs RSCALE=GREGORIAN (RFC 7529)"));
            }
            if !matches!(self.freq, Frequency::Monthly | Frequency::Yearly)
                || self.by_month_day.is_empty()
                || self.by_month_day.iter().any(|&d| d < 0)
                || !self.by_day.is_empty()
            {
                return Err(err(
                    "SKIP=BACKWARD is supported only with FREQ=MONTHLY or YEARLY, positive BYMONTHDAY and no BYDAY",
                ));
            }
        }
        self.compile();
        Ok(self)
    }

    /// The same series with its month-day anchor written into the rule, so that it survives a clamped instance:
    /// a monthly rule started on the 31st becomes `FREQ=MONTHLY;BYMONTHDAY=31;RSCALE=GREGORIAN;SKIP=BACKWARD`, whose
    /// occurrences from any later instance are the same as the original rule's from the start. Rules that do not
    /// take their day of month from the start date, or start on a day every month has, are returned unchanged.
    pub fn anchored_at(&self, start: NaiveDate) -> Recurrence {
        if !self.needs_anchor(start) {
            return self.clone();
        }
        let day = start.day();
        let mut r = self.clone();
        // day is 29..=31
        r.by_month_day = vec![day as i8];
        if r.freq == Frequency::Yearly && r.by_month.is_empty() {
            r.by_month = vec![start.month() as u8];
        }
        r.skip_backward = true;
        r.compile();
        r
    }

    /// Whether [`Recurrence::anchored_at`] would change the rule.
    fn needs_anchor(&self, start: NaiveDate) -> bool {
        matches!(self.freq, Frequency::Monthly | Frequency::Yearly)
            && self.by_month_day.is_empty()
            && self.by_day.is_empty()
            && start.day() >= 29
    }

    fn month_ok(&self, month: u32) -> bool {
        self.compiled.months == 0 || self.compiled.months & (1 << month) != 0
    }

    /// Whether a day passes the DAILY limits (BYMONTH, BYMONTHDAY, BYDAY without ordinals).
    fn day_ok(&self, d: NaiveDate) -> bool {
        let c = &self.compiled;
        if !self.month_ok(d.month()) {
            return false;
        }
        if c.wd_all != 0 && c.wd_all & (1 << d.weekday().num_days_from_monday()) == 0 {
            return false;
        }
        if c.md_pos | c.md_neg != 0 {
            let day = d.day();
            let len = days_in_month(d.year(), d.month());
            if c.md_pos & (1 << day) == 0 && c.md_neg & (1 << (len + 1 - day)) == 0 {
                return false;
            }
        }
        true
    }

    /// The days (bit d = day d) of a month that the rule yields in a MONTHLY or YEARLY period.
    fn month_days(&self, year: i32, month: u32, anchor_day: u32, year_scope: bool) -> u32 {
        let c = &self.compiled;
        let len = days_in_month(year, month);
        let has_md = c.md_pos | c.md_neg != 0;
        let has_wd = !self.by_day.is_empty();
        if !has_md && !has_wd {
            return 1 << anchor_day.min(len);
        }
        let full: u32 = ((1u64 << (len + 1)) - 2) as u32;
        let mut mask = full;
        if has_md {
            let mut md = c.md_pos & full;
            let mut neg = c.md_neg;
            while neg != 0 {
                let k = neg.trailing_zeros();
                neg &= neg - 1;
                if k <= len {
                    md |= 1 << (len + 1 - k);
                }
            }
            if self.skip_backward && (u64::from(c.md_pos) >> (len + 1)) != 0 {
                md |= 1 << len;
            }
            mask &= md;
        }
        if has_wd {
            let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
                return 0;
            };
            let first_wd = first.weekday().num_days_from_monday();
            let (doy0, ylen) = if year_scope {
                (first.ordinal0(), if is_leap(year) { 366 } else { 365 })
            } else {
                (0, len)
            };
            let mut wm = 0u32;
            for w in 0..7u32 {
                let wi = w as usize;
                let all = c.wd_all & (1 << w) != 0;
                let (pos, neg) = (c.wd_pos[wi], c.wd_neg[wi]);
                if !all && pos == 0 && neg == 0 {
                    continue;
                }
                let mut d = 1 + (w + 7 - first_wd) % 7;
                while d <= len {
                    let n = doy0 + d;
                    let p = (n - 1) / 7 + 1;
                    let q = (ylen - n) / 7 + 1;
                    if all || pos & (1 << p) != 0 || neg & (1 << q) != 0 {
                        wm |= 1 << d;
                    }
                    d += 7;
                }
            }
            mask &= wm;
        }
        mask
    }

    /// Calls `f` with every date the rule yields from `start` on (inclusive, only dates that match), in increasing
    /// order, ignoring COUNT and UNTIL, until `f` breaks or the rule can yield no more dates.
    ///
    /// `start` plays the role of DTSTART: its weekday, day of month and month fill in what the rule leaves open,
    /// and the periods (`INTERVAL`) count from its period. The search gives up after a whole 400-year Gregorian
    /// cycle of periods without a match, which proves the rule can never match again.
    fn scan(&self, start: NaiveDate, mut f: impl FnMut(NaiveDate) -> ControlFlow<()>) {
        let interval = self.interval;
        let mut empty: u32 = 0;
        match self.freq {
            Frequency::Daily => {
                let mut d = start;
                loop {
                    if self.day_ok(d) {
                        empty = 0;
                        if f(d).is_break() {
                            return;
                        }
                    } else {
                        empty += 1;
                        if empty > 146_097 {
                            return;
                        }
                    }
                    d = match d.checked_add_days(Days::new(u64::from(interval))) {
                        Some(n) => n,
                        None => return,
                    };
                }
            }
            Frequency::Weekly => {
                let wkst = u32::from(self.wkst);
                let back = (start.weekday().num_days_from_monday() + 7 - wkst) % 7;
                let Some(mut week) = start.checked_sub_days(Days::new(u64::from(back))) else {
                    return;
                };
                let wmask = if self.compiled.wd_all == 0 {
                    1u8 << start.weekday().num_days_from_monday()
                } else {
                    self.compiled.wd_all
                };
                // days of the first week before `start` are not occurrences
                let mut first_day = back;
                loop {
                    let mut any = false;
                    for i in first_day..7u32 {
                        let wd = (wkst + i) % 7;
                        if wmask & (1 << wd) == 0 {
                            continue;
                        }
                        let Some(d) = week.checked_add_days(Days::new(u64::from(i))) else {
                            return;
                        };
                        if !self.month_ok(d.month()) {
                            continue;
                        }
                        any = true;
                        if f(d).is_break() {
                            return;
                        }
                    }
                    if any {
                        empty = 0;
                    } else {
                        empty += 1;
                        if empty > 20_871 {
                            return;
                        }
                    }
                    first_day = 0;
                    week = match week.checked_add_days(Days::new(7 * u64::from(interval))) {
                        Some(n) => n,
                        None => return,
                    };
                }
            }
            Frequency::Monthly => {
                let anchor_day = start.day();
                let mut year = start.year();
                let mut month0 = start.month0();
                loop {
                    let month = month0 + 1;
                    let mut any = false;
                    if self.month_ok(month) {
                        let mask = self.month_days(year, month, anchor_day, false);
                        if emit_month(year, month, mask, start, &mut any, &mut f).is_break() {
                            return;
                        }
                    }
                    if any {
                        empty = 0;
                    } else {
                        empty += 1;
                        if empty > 4_800 {
                            return;
                        }
                    }
                    let next = month0 + interval;
                    year += (next / 12) as i32;
                    month0 = next % 12;
                    if year > MAX_YEAR {
                        return;
                    }
                }
            }
            Frequency::Yearly => {
                let anchor_day = start.day();
                let year_scope = self.by_month.is_empty();
                let months: u16 = if !year_scope {
                    self.compiled.months
                } else if self.by_month_day.is_empty() && self.by_day.is_empty() {
                    1 << start.month()
                } else {
                    0b1_1111_1111_1110
                };
                let mut year = start.year();
                loop {
                    let mut any = false;
                    for month in 1..=12u32 {
                        if months & (1 << month) == 0 {
                            continue;
                        }
                        let mask = self.month_days(year, month, anchor_day, year_scope);
                        if emit_month(year, month, mask, start, &mut any, &mut f).is_break() {
                            return;
                        }
                    }
                    if any {
                        empty = 0;
                    } else {
                        empty += 1;
                        if empty > 400 {
                            return;
                        }
                    }
                    year += interval as i32;
                    if year > MAX_YEAR {
                        return;
                    }
                }
            }
        }
    }

    fn until_allows(&self, due: &Due) -> bool {
        match self.until {
            None => true,
            Some(Until::Date(u)) => due.date <= u,
            Some(Until::Instant(u)) => due.instant() <= u,
            Some(Until::Local(u)) => due.local() <= u,
        }
    }

    /// The first `n` occurrences of the series that starts at `start` (DTSTART), honouring COUNT and UNTIL.
    ///
    /// Only dates that match the rule are occurrences; give a `start` that matches (as RFC 5545 asks) to have it
    /// as the first one. Every occurrence keeps `start`'s time of day and zone.
    pub fn occurrences(&self, start: &Due, n: usize) -> Vec<Due> {
        let mut out = Vec::new();
        let limit = self.count.map_or(n, |c| n.min(c as usize));
        if limit == 0 {
            return out;
        }
        self.scan(start.date, |d| {
            let due = start.with_date(d);
            if !self.until_allows(&due) {
                return ControlFlow::Break(());
            }
            out.push(due);
            if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        out
    }
}

const MAX_YEAR: i32 = 200_000;

fn emit_month(
    year: i32,
    month: u32,
    mut mask: u32,
    start: NaiveDate,
    any: &mut bool,
    f: &mut impl FnMut(NaiveDate) -> ControlFlow<()>,
) -> ControlFlow<()> {
    while mask != 0 {
        let day = mask.trailing_zeros();
        mask &= mask - 1;
        let Some(d) = NaiveDate::from_ymd_opt(year, month, day) else {
            continue;
        };
        if d < start {
            continue;
        }
        *any = true;
        f(d)?;
    }
    ControlFlow::Continue(())
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The next instance of a series: its due date, its index in the series, and the rule it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// When the next instance is due (same time of day and zone as the current one).
    pub due: Due,
    /// Its index in the series: the current index plus one, plus the occurrences skipped by a late completion.
    pub index: u32,
    /// The rule to store on it: the current rule with its month-day anchor written in
    /// ([`Recurrence::anchored_at`]), so "monthly on the 31st" survives a February instance.
    pub rule: Recurrence,
}

/// The next occurrence of a series after an instance was completed (see [`next_occurrence`]); just the due date.
pub fn next_due(
    rule: &Recurrence,
    current: Option<&Due>,
    index: u32,
    completed_at: DateTime<Utc>,
) -> Option<Due> {
    next_core(rule, current, index, completed_at).map(|(due, _, _)| due)
}

/// The next occurrence of a series after the instance at `index`, due `current`, was completed at `completed_at`.
///
/// It is the first occurrence strictly after the later of the current due date and the completion date (the
/// completion instant read as a date in the task's zone), so a late completion catches up instead of creating
/// overdue instances. Occurrences are counted from the current instance: the current due date is the series'
/// anchor (its weekday, day of month and month fill in what the rule leaves open, with month-end clamping; see
/// `docs/recurrence.md`). `None` once COUNT (by index) or UNTIL is exhausted, or when the rule can never match
/// again.
///
/// A task without a due date anchors its series at the completion date (in UTC): the next instance is the first
/// occurrence after that date, at index `index + 1`, due at the start of that day.
///
/// ```
/// use chrono::{NaiveDate, TimeZone as _, Utc};
/// use todo_domain::{next_due, Due, Recurrence};
/// let monthly = Recurrence::parse("monthly")?;
/// let jan31 = Due::on(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap());
/// let done = Utc.with_ymd_and_hms(2026, 1, 30, 12, 0, 0).unwrap();
/// let next = next_due(&monthly, Some(&jan31), 0, done).unwrap();
/// assert_eq!(next.date, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap());
/// # Ok::<(), todo_domain::ValidationError>(())
/// ```
pub fn next_occurrence(
    rule: &Recurrence,
    current: Option<&Due>,
    index: u32,
    completed_at: DateTime<Utc>,
) -> Option<Occurrence> {
    next_core(rule, current, index, completed_at).map(|(due, index, anchored)| Occurrence {
        due,
        index,
        rule: anchored.unwrap_or_else(|| rule.clone()),
    })
}

/// The next due date and index, and the anchored rule when anchoring changed it (so the common path allocates
/// nothing).
fn next_core(
    rule: &Recurrence,
    current: Option<&Due>,
    index: u32,
    completed_at: DateTime<Utc>,
) -> Option<(Due, u32, Option<Recurrence>)> {
    let (template, reference, mut idx) = match current {
        Some(due) => {
            let done = due.zone.local_date(completed_at);
            (*due, due.date.max(done), index)
        }
        None => {
            let start = Due::on(TimeZone::utc().local_date(completed_at));
            (start, start.date, index)
        }
    };
    let pinned = rule
        .needs_anchor(template.date)
        .then(|| rule.anchored_at(template.date));
    let anchored = pinned.as_ref().unwrap_or(rule);
    let count = rule.count;
    let mut found = None;
    anchored.scan(template.date, |d| {
        if d == template.date {
            return ControlFlow::Continue(());
        }
        if current.is_some() || d > reference {
            idx = match idx.checked_add(1) {
                Some(i) => i,
                None => return ControlFlow::Break(()),
            };
        }
        if count.is_some_and(|c| idx >= c) {
            return ControlFlow::Break(());
        }
        let due = template.with_date(d);
        if !anchored.until_allows(&due) {
            return ControlFlow::Break(());
        }
        if d > reference {
            found = Some(due);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found.map(|due| (due, idx, pinned))
}

impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FREQ={}", self.freq.as_str())?;
        if self.interval != 1 {
            write!(f, ";INTERVAL={}", self.interval)?;
        }
        if !self.by_month.is_empty() {
            f.write_str(";BYMONTH=")?;
            write_list(f, self.by_month.iter())?;
        }
        if !self.by_month_day.is_empty() {
            f.write_str(";BYMONTHDAY=")?;
            write_list(f, self.by_month_day.iter())?;
        }
        if !self.by_day.is_empty() {
            f.write_str(";BYDAY=")?;
            for (i, &(o, w)) in self.by_day.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                if o != 0 {
                    write!(f, "{o}")?;
                }
                f.write_str(DAY_NAMES[usize::from(w)])?;
            }
        }
        if let Some(c) = self.count {
            write!(f, ";COUNT={c}")?;
        }
        match self.until {
            None => {}
            Some(Until::Date(d)) => write!(f, ";UNTIL={}", d.format("%Y%m%d"))?,
            Some(Until::Instant(t)) => write!(f, ";UNTIL={}", t.format("%Y%m%dT%H%M%SZ"))?,
            Some(Until::Local(t)) => write!(f, ";UNTIL={}", t.format("%Y%m%dT%H%M%S"))?,
        }
        if self.wkst != 0 {
            write!(f, ";WKST={}", DAY_NAMES[usize::from(self.wkst)])?;
        }
        if self.skip_backward {
            f.write_str(";RSCALE=GREGORIAN;SKIP=BACKWARD")?;
        }
        Ok(())
    }
}

fn write_list<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl std::str::FromStr for Recurrence {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Recurrence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Recurrence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Recurrence::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn weekday_index(word: &str) -> Option<u8> {
    let w = word.trim_end_matches(['s', '.']);
    LONG_DAY_NAMES
        .iter()
        .position(|long| *long == w || (w.len() >= 3 && long.starts_with(w)))
        .map(|i| i as u8)
}

fn unit_frequency(word: &str) -> Option<Frequency> {
    match word {
        "day" | "days" => Some(Frequency::Daily),
        "week" | "weeks" => Some(Frequency::Weekly),
        "month" | "months" => Some(Frequency::Monthly),
        "year" | "years" => Some(Frequency::Yearly),
        _ => None,
    }
}

/// Friendly phrases; `Ok(None)` when the input is not one (then it is read as RRULE text).
fn parse_phrase(input: &str) -> Result<Option<Recurrence>, ValidationError> {
    let lower = input.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let simple = |freq| Ok(Some(Recurrence::simple(freq, 1)));
    match words.as_slice() {
        ["daily"] => return simple(Frequency::Daily),
        ["weekly"] => return simple(Frequency::Weekly),
        ["monthly"] => return simple(Frequency::Monthly),
        ["yearly"] | ["annually"] => return simple(Frequency::Yearly),
        ["weekdays"] | ["every", "weekday"] | ["on", "weekdays"] => {
            let mut r = Recurrence::simple(Frequency::Weekly, 1);
            r.by_day = (0..5).map(|w| (0, w)).collect();
            return r.finish(false).map(Some);
        }
        ["every", rest @ ..] if !rest.is_empty() => {}
        _ => return Ok(None),
    }
    let rest = &words[1..];
    let hint = "expected `every N days|weeks|months|years` or `every monday and thursday`";
    match rest {
        [unit] if unit_frequency(unit).is_some() && !unit.ends_with('s') => {
            return Ok(unit_frequency(unit).map(|f| Recurrence::simple(f, 1)));
        }
        ["other", unit] if unit_frequency(unit).is_some() && !unit.ends_with('s') => {
            return Ok(unit_frequency(unit).map(|f| Recurrence::simple(f, 2)));
        }
        [n, unit] if n.bytes().all(|b| b.is_ascii_digit()) => {
            let Some(freq) = unit_frequency(unit) else {
                return Err(err(format!("unknown unit `{unit}`: {hint}")));
            };
            let interval = match n.parse::<u32>() {
                Ok(i) if (1..=MAX_INTERVAL).contains(&i) => i,
                _ => {
                    return Err(err(format!(
                        "interval must be between 1 and {MAX_INTERVAL}"
                    )));
                }
            };
            return Ok(Some(Recurrence::simple(freq, interval)));
        }
        _ => {}
    }
    // every monday and thursday / every mon, wed, fri
    let mut by_day = Vec::new();
    for word in rest.iter().flat_map(|w| w.split(',')) {
        if word.is_empty() || word == "and" || word == "&" {
            continue;
        }
        match weekday_index(word) {
            Some(w) => by_day.push((0, w)),
            None => return Err(err(format!("`{word}` is not a day name: {hint}"))),
        }
    }
    if by_day.is_empty() {
        return Err(err(hint));
    }
    let mut r = Recurrence::simple(Frequency::Weekly, 1);
    r.by_day = by_day;
    r.finish(false).map(Some)
}

fn parse_number<T: std::str::FromStr>(part: &str, value: &str) -> Result<T, ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 10
        && value
            .strip_prefix(['+', '-'])
            .unwrap_or(value)
            .bytes()
            .all(|b| b.is_ascii_digit());
    if !ok {
        return Err(err(format!("{part}={value} is not a number")));
    }
    value
        .strip_prefix('+')
        .unwrap_or(value)
        .parse()
        .map_err(|_| err(format!("{part}={value} is out of range")))
}

fn parse_day_name(part: &str, name: &str) -> Result<u8, ValidationError> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .map(|i| i as u8)
        .ok_or_else(|| {
            err(format!(
                "{part}: `{name}` is not a weekday (MO, TU, WE, TH, FR, SA, SU)"
            ))
        })
}

fn parse_until(value: &str) -> Result<Until, ValidationError> {
    let bad = || {
        err(format!(
            "UNTIL={value} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSS[Z])"
        ))
    };
    let v = value.to_ascii_uppercase();
    if v.len() == 8 {
        return NaiveDate::parse_from_str(&v, "%Y%m%d")
            .map(Until::Date)
            .map_err(|_| bad());
    }
    if let Some(local) = v.strip_suffix('Z') {
        if local.len() == 15 {
            return NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S")
                .map(|t| Until::Instant(t.and_utc()))
                .map_err(|_| bad());
        }
        return Err(bad());
    }
    if v.len() == 15 {
        return NaiveDateTime::parse_from_str(&v, "%Y%m%dT%H%M%S")
            .map(Until::Local)
            .map_err(|_| bad());
    }
    Err(bad())
}

fn parse_rrule(input: &str) -> Result<Recurrence, ValidationError> {
    let body = match input.get(..6) {
        Some(p) if p.eq_ignore_ascii_case("RRULE:") => &input[6..],
        _ => input,
    };
    let mut freq = None;
    let mut r = Recurrence::simple(Frequency::Daily, 1);
    let mut seen: Vec<String> = Vec::new();
    let mut rscale = false;
    for part in body.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(err(format!(
                "`{part}` is not NAME=VALUE: expected a phrase such as `weekly` or RRULE text such as `FREQ=WEEKLY`"
            )));
        };
        let name = name.trim().to_ascii_uppercase();
        let value = value.trim();
        if seen.contains(&name) {
            return Err(err(format!("{name} must not appear more than once")));
        }
        seen.push(name.clone());
        match name.as_str() {
            "FREQ" => {
                freq = Some(match value.to_ascii_uppercase().as_str() {
                    "DAILY" => Frequency::Daily,
                    "WEEKLY" => Frequency::Weekly,
                    "MONTHLY" => Frequency::Monthly,
                    "YEARLY" => Frequency::Yearly,
                    "SECONDLY" | "MINUTELY" | "HOURLY" => {
                        return Err(err(format!(
                            "unsupported FREQ={value}: tasks recur DAILY, WEEKLY, MONTHLY or YEARLY"
                        )));
                    }
                    _ => return Err(err(format!("unknown FREQ={value}"))),
                });
            }
            "INTERVAL" => {
                let i: u32 = parse_number("INTERVAL", value)?;
                if !(1..=MAX_INTERVAL).contains(&i) {
                    return Err(err(format!(
                        "INTERVAL must be between 1 and {MAX_INTERVAL}"
                    )));
                }
                r.interval = i;
            }
            "COUNT" => {
                let c: u32 = parse_number("COUNT", value)?;
                if !(1..=MAX_COUNT).contains(&c) {
                    return Err(err(format!("COUNT must be between 1 and {MAX_COUNT}")));
                }
                r.count = Some(c);
            }
            "UNTIL" => r.until = Some(parse_until(value)?),
            "WKST" => r.wkst = parse_day_name("WKST", value)?,
            "BYMONTH" => {
                for v in value.split(',') {
                    let m: i32 = parse_number("BYMONTH", v.trim())?;
                    if !(1..=12).contains(&m) {
                        return Err(err(format!("BYMONTH={m} is out of range 1..12")));
                    }
                    r.by_month.push(m as u8);
                }
            }
            "BYMONTHDAY" => {
                for v in value.split(',') {
                    let d: i32 = parse_number("BYMONTHDAY", v.trim())?;
                    if d == 0 || !(-31..=31).contains(&d) {
                        return Err(err(format!(
                            "BYMONTHDAY={d} is out of range 1..31 or -31..-1"
                        )));
                    }
                    r.by_month_day.push(d as i8);
                }
            }
            "BYDAY" => {
                for v in value.split(',') {
                    let v = v.trim();
                    let split = v.len().saturating_sub(2);
                    let (ord, day) = match (v.get(..split), v.get(split..)) {
                        (Some(o), Some(d)) => (o, d),
                        _ => return Err(err(format!("BYDAY: `{v}` is not a weekday"))),
                    };
                    let w = parse_day_name("BYDAY", day)?;
                    let o: i32 = if ord.is_empty() {
                        0
                    } else {
                        parse_number("BYDAY", ord)?
                    };
                    if o == 0 && !ord.is_empty() || !(-53..=53).contains(&o) {
                        return Err(err(format!(
                            "BYDAY ordinal {ord} is out of range 1..53 or -53..-1"
                        )));
                    }
                    r.by_day.push((o as i8, w));
                }
            }
            "RSCALE" => {
                if !value.eq_ignore_ascii_case("GREGORIAN") {
                    return Err(err(format!("unsupported RSCALE={value}: only GREGORIAN")));
                }
                rscale = true;
            }
            "SKIP" => match value.to_ascii_uppercase().as_str() {
                "OMIT" => r.skip_backward = false,
                "BACKWARD" => r.skip_backward = true,
                "FORWARD" => return Err(err("unsupported SKIP=FORWARD: only OMIT or BACKWARD")),
                _ => return Err(err(format!("unknown SKIP={value}"))),
            },
            "BYSETPOS" | "BYWEEKNO" | "BYYEARDAY" | "BYHOUR" | "BYMINUTE" | "BYSECOND"
            | "BYEASTER" => {
                return Err(err(format!("unsupported part {name}")));
            }
            _ => return Err(err(format!("unknown part {name}"))),
        }
    }
    if seen.iter().any(|n| n == "SKIP") && !rscale {
        return Err(err("SKIP needs RSCALE=GREGORIAN (RFC 7529)"));
    }
    r.freq = freq.ok_or_else(|| err("FREQ is required (or use a phrase such as `weekly`)"))?;
    r.finish(rscale)
}

#[cfg(test)]
#[path = "recurrence_tests.rs"]
mod tests;
