use super::*;
use chrono::{Duration, NaiveTime, TimeZone as _, Weekday};
use proptest::prelude::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn rule(s: &str) -> Recurrence {
    Recurrence::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn canon(s: &str) -> String {
    rule(s).to_string()
}

/// Completion an hour before the due instant: an on-time completion.
fn on_time(due: &Due) -> DateTime<Utc> {
    due.instant() - Duration::hours(1)
}

/// The due dates of the first `n` instances, following `next_occurrence` with on-time completions.
fn chain(r: &Recurrence, start: Due, n: usize) -> Vec<NaiveDate> {
    let mut out = vec![start.date];
    let (mut due, mut rule, mut index) = (start, r.clone(), 0);
    while out.len() < n {
        match next_occurrence(&rule, Some(&due), index, on_time(&due)) {
            Some(o) => {
                out.push(o.due.date);
                due = o.due;
                rule = o.rule;
                index = o.index;
            }
            None => break,
        }
    }
    out
}

#[test]
fn phrases_parse_to_canonical_rules() {
    assert_eq!(canon("daily"), "FREQ=DAILY");
    assert_eq!(canon(" Weekly "), "FREQ=WEEKLY");
    assert_eq!(canon("MONTHLY"), "FREQ=MONTHLY");
    assert_eq!(canon("yearly"), "FREQ=YEARLY");
    assert_eq!(canon("annually"), "FREQ=YEARLY");
    assert_eq!(canon("weekdays"), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR");
    assert_eq!(canon("every weekday"), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR");
    assert_eq!(canon("every day"), "FREQ=DAILY");
    assert_eq!(canon("every 3 days"), "FREQ=DAILY;INTERVAL=3");
    assert_eq!(canon("every 2 weeks"), "FREQ=WEEKLY;INTERVAL=2");
    assert_eq!(canon("every 1 month"), "FREQ=MONTHLY");
    assert_eq!(canon("every 6 months"), "FREQ=MONTHLY;INTERVAL=6");
    assert_eq!(canon("every 2 years"), "FREQ=YEARLY;INTERVAL=2");
    assert_eq!(canon("every other week"), "FREQ=WEEKLY;INTERVAL=2");
    assert_eq!(
        canon("every monday and thursday"),
        "FREQ=WEEKLY;BYDAY=MO,TH"
    );
    assert_eq!(
        canon("every Thursday and Monday"),
        "FREQ=WEEKLY;BYDAY=MO,TH"
    );
    assert_eq!(
        canon("every mon, wed and fri"),
        "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    );
    assert_eq!(canon("every sunday"), "FREQ=WEEKLY;BYDAY=SU");
}

#[test]
fn rrule_text_parses_to_canonical_rules() {
    assert_eq!(canon("RRULE:FREQ=WEEKLY"), "FREQ=WEEKLY");
    assert_eq!(canon("rrule:freq=weekly;interval=1;wkst=mo"), "FREQ=WEEKLY");
    assert_eq!(
        canon("BYDAY=-1FR,1MO,TH;FREQ=MONTHLY;COUNT=10"),
        "FREQ=MONTHLY;BYDAY=TH,1MO,-1FR;COUNT=10"
    );
    assert_eq!(
        canon("FREQ=YEARLY;BYMONTH=11,3,3;BYMONTHDAY=-1,15;WKST=SU"),
        "FREQ=YEARLY;BYMONTH=3,11;BYMONTHDAY=15,-1;WKST=SU"
    );
    assert_eq!(
        canon("FREQ=DAILY;UNTIL=20261231"),
        "FREQ=DAILY;UNTIL=20261231"
    );
    assert_eq!(
        canon("FREQ=DAILY;UNTIL=20261231T235959Z"),
        "FREQ=DAILY;UNTIL=20261231T235959Z"
    );
    assert_eq!(
        canon("FREQ=DAILY;UNTIL=20261231T080000"),
        "FREQ=DAILY;UNTIL=20261231T080000"
    );
    assert_eq!(
        canon("RSCALE=GREGORIAN;FREQ=MONTHLY;BYMONTHDAY=31;SKIP=BACKWARD"),
        "FREQ=MONTHLY;BYMONTHDAY=31;RSCALE=GREGORIAN;SKIP=BACKWARD"
    );
    assert_eq!(
        canon("FREQ=MONTHLY;RSCALE=GREGORIAN;SKIP=OMIT"),
        "FREQ=MONTHLY"
    );
    assert_eq!(canon("FREQ=DAILY;"), "FREQ=DAILY");
    assert_eq!(rule("FREQ=DAILY;COUNT=5").count(), Some(5));
    assert_eq!(rule("FREQ=DAILY").count(), None);
}

fn parse_error(s: &str) -> String {
    let e = Recurrence::parse(s).expect_err(s);
    assert_eq!(e.field, "recurrence");
    e.message
}

#[test]
fn unsupported_and_invalid_rules_are_errors_that_name_the_part() {
    for part in [
        "BYSETPOS=1",
        "BYWEEKNO=20",
        "BYYEARDAY=100",
        "BYHOUR=9",
        "BYMINUTE=0",
        "BYSECOND=0",
    ] {
        let name = part.split('=').next().unwrap();
        let msg = parse_error(&format!("FREQ=MONTHLY;{part}"));
        assert!(msg.contains("unsupported") && msg.contains(name), "{msg}");
    }
    assert!(parse_error("FREQ=HOURLY").contains("FREQ=HOURLY"));
    assert!(parse_error("FREQ=SOMETIMES").contains("FREQ"));
    assert!(parse_error("INTERVAL=2").contains("FREQ is required"));
    assert!(parse_error("FREQ=DAILY;COUNT=2;UNTIL=20260101").contains("COUNT and UNTIL"));
    assert!(parse_error("FREQ=DAILY;FREQ=WEEKLY").contains("more than once"));
    assert!(parse_error("FREQ=WEEKLY;BYDAY=1MO").contains("BYDAY"));
    assert!(parse_error("FREQ=WEEKLY;BYMONTHDAY=3").contains("BYMONTHDAY"));
    assert!(parse_error("FREQ=MONTHLY;BYDAY=6MO").contains("ordinal"));
    assert!(parse_error("FREQ=YEARLY;BYDAY=54MO").contains("BYDAY"));
    assert!(parse_error("FREQ=DAILY;INTERVAL=0").contains("INTERVAL"));
    assert!(parse_error("FREQ=DAILY;COUNT=0").contains("COUNT"));
    assert!(parse_error("FREQ=DAILY;COUNT=x").contains("COUNT"));
    assert!(parse_error("FREQ=MONTHLY;BYMONTHDAY=32").contains("BYMONTHDAY"));
    assert!(parse_error("FREQ=MONTHLY;BYMONTHDAY=0").contains("BYMONTHDAY"));
    assert!(parse_error("FREQ=YEARLY;BYMONTH=13").contains("BYMONTH"));
    assert!(parse_error("FREQ=DAILY;UNTIL=2026").contains("UNTIL"));
    assert!(parse_error("FREQ=DAILY;WKST=XX").contains("WKST"));
    assert!(parse_error("FREQ=DAILY;X-FOO=1").contains("X-FOO"));
    assert!(parse_error("FREQ=MONTHLY;BYMONTHDAY=31;SKIP=BACKWARD").contains("RSCALE"));
    assert!(
        parse_error("FREQ=MONTHLY;BYMONTHDAY=31;RSCALE=GREGORIAN;SKIP=FORWARD").contains("SKIP")
    );
    assert!(parse_error("FREQ=MONTHLY;RSCALE=HEBREW").contains("RSCALE"));
    assert!(parse_error("every fortnight").contains("fortnight"));
    assert!(parse_error("every 0 days").contains("interval"));
    assert!(parse_error("every 3 parsecs").contains("parsecs"));
    assert!(parse_error("sometimes").contains("NAME=VALUE"));
    assert!(parse_error("").contains("empty"));
}

fn due_at(d: NaiveDate) -> Due {
    Due::on(d)
}

#[test]
fn design_example_daily_next_is_the_next_day() {
    let due = due_at(date(2026, 2, 10));
    let done = Utc.with_ymd_and_hms(2026, 2, 9, 16, 0, 0).unwrap();
    assert_eq!(
        next_due(&rule("daily"), Some(&due), 0, done).unwrap().date,
        date(2026, 2, 11)
    );
    assert_eq!(
        next_due(&rule("weekly"), Some(&due), 0, done).unwrap().date,
        date(2026, 2, 17)
    );
    assert_eq!(
        next_due(&rule("monthly"), Some(&due), 0, done)
            .unwrap()
            .date,
        date(2026, 3, 10)
    );
    assert_eq!(
        next_due(&rule("yearly"), Some(&due), 0, done).unwrap().date,
        date(2027, 2, 10)
    );
}

#[test]
fn monthly_on_the_31st_clamps_without_drift() {
    let got = chain(&rule("monthly"), due_at(date(2026, 1, 31)), 6);
    assert_eq!(
        got,
        [
            date(2026, 1, 31),
            date(2026, 2, 28),
            date(2026, 3, 31),
            date(2026, 4, 30),
            date(2026, 5, 31),
            date(2026, 6, 30)
        ]
    );
    // leap year
    let got = chain(&rule("monthly"), due_at(date(2028, 1, 30)), 3);
    assert_eq!(
        got,
        [date(2028, 1, 30), date(2028, 2, 29), date(2028, 3, 30)]
    );
}

#[test]
fn the_carried_rule_keeps_the_anchor() {
    let start = due_at(date(2026, 1, 31));
    let o = next_occurrence(&rule("monthly"), Some(&start), 0, on_time(&start)).unwrap();
    assert_eq!(
        o.rule.to_string(),
        "FREQ=MONTHLY;BYMONTHDAY=31;RSCALE=GREGORIAN;SKIP=BACKWARD"
    );
    assert_eq!(Recurrence::parse(&o.rule.to_string()).unwrap(), o.rule);
    // day 28 and below needs no anchor
    let start = due_at(date(2026, 1, 28));
    let o = next_occurrence(&rule("monthly"), Some(&start), 0, on_time(&start)).unwrap();
    assert_eq!(o.rule.to_string(), "FREQ=MONTHLY");
}

#[test]
fn yearly_on_feb_29_clamps_to_feb_28() {
    let got = chain(&rule("yearly"), due_at(date(2024, 2, 29)), 5);
    assert_eq!(
        got,
        [
            date(2024, 2, 29),
            date(2025, 2, 28),
            date(2026, 2, 28),
            date(2027, 2, 28),
            date(2028, 2, 29)
        ]
    );
}

#[test]
fn explicit_bymonthday_follows_rfc_5545_and_skips_short_months() {
    let got = chain(
        &rule("FREQ=MONTHLY;BYMONTHDAY=31"),
        due_at(date(2026, 1, 31)),
        4,
    );
    assert_eq!(
        got,
        [
            date(2026, 1, 31),
            date(2026, 3, 31),
            date(2026, 5, 31),
            date(2026, 7, 31)
        ]
    );
    let got = chain(
        &rule("FREQ=MONTHLY;BYMONTHDAY=-1"),
        due_at(date(2026, 1, 31)),
        3,
    );
    assert_eq!(
        got,
        [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
    );
}

#[test]
fn late_completion_catches_up_and_counts_skipped_occurrences() {
    let due = due_at(date(2026, 2, 10));
    let done = Utc.with_ymd_and_hms(2026, 2, 14, 12, 0, 0).unwrap();
    let o = next_occurrence(&rule("daily"), Some(&due), 3, done).unwrap();
    assert_eq!(o.due.date, date(2026, 2, 15));
    assert_eq!(o.index, 8);
    // completed on the due date itself: the next one after it
    let done = Utc.with_ymd_and_hms(2026, 2, 10, 23, 0, 0).unwrap();
    assert_eq!(
        next_due(&rule("weekly"), Some(&due), 0, done).unwrap().date,
        date(2026, 2, 17)
    );
}

#[test]
fn completion_date_is_read_in_the_task_zone() {
    // 2026-02-10 23:30 in New York is already the 11th in UTC; the reference date is the 10th.
    let due = Due {
        date: date(2026, 2, 10),
        time: None,
        zone: TimeZone::parse("America/New_York").unwrap(),
    };
    let done = Utc.with_ymd_and_hms(2026, 2, 11, 4, 30, 0).unwrap();
    assert_eq!(
        next_due(&rule("daily"), Some(&due), 0, done).unwrap().date,
        date(2026, 2, 11)
    );
}

#[test]
fn count_is_exhausted_by_index() {
    let r = rule("FREQ=DAILY;COUNT=3");
    let due = due_at(date(2026, 2, 10));
    assert_eq!(chain(&r, due, 10).len(), 3);
    assert!(next_occurrence(&r, Some(&due), 2, on_time(&due)).is_none());
    // a late completion that skips past the end ends the series
    let late = Utc.with_ymd_and_hms(2026, 2, 12, 12, 0, 0).unwrap();
    assert!(next_occurrence(&r, Some(&due), 0, late).is_none());
}

#[test]
fn until_is_inclusive_and_ends_the_series() {
    let got = chain(
        &rule("FREQ=WEEKLY;UNTIL=20260224"),
        due_at(date(2026, 2, 10)),
        10,
    );
    assert_eq!(
        got,
        [date(2026, 2, 10), date(2026, 2, 17), date(2026, 2, 24)]
    );
    // UNTIL as an instant compares with the due instant (09:00 Berlin = 08:00Z)
    let due = Due {
        date: date(2026, 2, 10),
        time: NaiveTime::from_hms_opt(9, 0, 0),
        zone: TimeZone::parse("Europe/Berlin").unwrap(),
    };
    let r = rule("FREQ=DAILY;UNTIL=20260211T080000Z");
    assert_eq!(
        next_due(&r, Some(&due), 0, on_time(&due)).unwrap().date,
        date(2026, 2, 11)
    );
    let r = rule("FREQ=DAILY;UNTIL=20260211T075959Z");
    assert!(next_due(&r, Some(&due), 0, on_time(&due)).is_none());
}

#[test]
fn a_task_without_due_date_anchors_at_completion() {
    let done = Utc.with_ymd_and_hms(2026, 2, 11, 16, 0, 0).unwrap(); // a Wednesday
    let o = next_occurrence(&rule("daily"), None, 4, done).unwrap();
    assert_eq!((o.due.date, o.index), (date(2026, 2, 12), 5));
    assert_eq!(o.due.time, None);
    assert_eq!(
        next_due(&rule("weekly"), None, 0, done).unwrap().date,
        date(2026, 2, 18)
    );
    assert_eq!(
        next_due(&rule("monthly"), None, 0, done).unwrap().date,
        date(2026, 3, 11)
    );
    assert_eq!(
        next_due(&rule("every monday and thursday"), None, 0, done)
            .unwrap()
            .date,
        date(2026, 2, 12)
    );
    assert!(next_due(&rule("FREQ=DAILY;COUNT=1"), None, 0, done).is_none());
}

#[test]
fn due_time_and_zone_carry_over_across_dst() {
    let zone = TimeZone::parse("Europe/Berlin").unwrap();
    let due = Due {
        date: date(2026, 3, 28),
        time: NaiveTime::from_hms_opt(2, 30, 0),
        zone,
    };
    let next = next_due(&rule("daily"), Some(&due), 0, on_time(&due)).unwrap();
    assert_eq!(next.date, date(2026, 3, 29));
    assert_eq!(next.time, due.time);
    // 02:30 does not exist on the 29th: the reminder instant moves forward to 03:30 CEST
    assert_eq!(
        next.instant(),
        Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap()
    );
    let after = next_due(&rule("daily"), Some(&next), 1, on_time(&next)).unwrap();
    assert_eq!(
        after.instant(),
        Utc.with_ymd_and_hms(2026, 3, 30, 0, 30, 0).unwrap()
    );
}

#[test]
fn weekly_by_day_with_interval_respects_the_week_start() {
    let r = rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH");
    // 2026-02-12 is a Thursday
    let got = chain(&r, due_at(date(2026, 2, 12)), 4);
    assert_eq!(
        got,
        [
            date(2026, 2, 12),
            date(2026, 2, 23),
            date(2026, 2, 26),
            date(2026, 3, 9)
        ]
    );
    assert_eq!(date(2026, 2, 23).weekday(), Weekday::Mon);
    // RFC 5545 example: WKST changes which weeks are taken (from 1997-08-05, a Tuesday)
    let mo = rule("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO");
    let su = rule("FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU");
    let start = due_at(date(1997, 8, 5));
    assert_eq!(
        mo.occurrences(&start, 10)
            .iter()
            .map(|d| d.date)
            .collect::<Vec<_>>(),
        [
            date(1997, 8, 5),
            date(1997, 8, 10),
            date(1997, 8, 19),
            date(1997, 8, 24)
        ]
    );
    assert_eq!(
        su.occurrences(&start, 10)
            .iter()
            .map(|d| d.date)
            .collect::<Vec<_>>(),
        [
            date(1997, 8, 5),
            date(1997, 8, 17),
            date(1997, 8, 19),
            date(1997, 8, 31)
        ]
    );
}

#[test]
fn weekdays_skip_the_weekend() {
    // 2026-02-13 is a Friday
    let got = chain(&rule("weekdays"), due_at(date(2026, 2, 13)), 3);
    assert_eq!(
        got,
        [date(2026, 2, 13), date(2026, 2, 16), date(2026, 2, 17)]
    );
}

#[test]
fn monthly_ordinal_weekdays() {
    let last_friday = rule("FREQ=MONTHLY;BYDAY=-1FR");
    let got = last_friday.occurrences(&due_at(date(2026, 1, 1)), 3);
    let got: Vec<_> = got.iter().map(|d| d.date).collect();
    assert_eq!(
        got,
        [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
    );
    let first_monday = rule("FREQ=MONTHLY;BYDAY=1MO");
    let got: Vec<_> = first_monday
        .occurrences(&due_at(date(2026, 1, 1)), 2)
        .iter()
        .map(|d| d.date)
        .collect();
    assert_eq!(got, [date(2026, 1, 5), date(2026, 2, 2)]);
    // yearly without BYMONTH: ordinal within the year (20th Monday of 2026 is May 18)
    let got: Vec<_> = rule("FREQ=YEARLY;BYDAY=20MO")
        .occurrences(&due_at(date(2026, 1, 1)), 1)
        .iter()
        .map(|d| d.date)
        .collect();
    assert_eq!(got, [date(2026, 5, 18)]);
    // yearly with BYMONTH: ordinal within the month (US Thanksgiving)
    let got: Vec<_> = rule("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH")
        .occurrences(&due_at(date(2026, 1, 1)), 2)
        .iter()
        .map(|d| d.date)
        .collect();
    assert_eq!(got, [date(2026, 11, 26), date(2027, 11, 25)]);
}

#[test]
fn a_rule_that_can_never_match_has_no_next_occurrence() {
    let r = rule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30");
    let due = due_at(date(2026, 1, 1));
    assert!(next_due(&r, Some(&due), 0, on_time(&due)).is_none());
    let r = rule("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31");
    assert!(next_due(&r, Some(&due), 0, on_time(&due)).is_none());
}

#[test]
fn recurrence_serializes_as_its_canonical_text() {
    let r = rule("every monday and thursday");
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"FREQ=WEEKLY;BYDAY=MO,TH\"");
    assert_eq!(serde_json::from_str::<Recurrence>(&json).unwrap(), r);
}

// ---- properties ----------------------------------------------------------------------------------------------

/// The parts of a generated rule, kept to check occurrences independently of the implementation.
#[derive(Debug, Clone)]
struct Parts {
    freq: Frequency,
    interval: u32,
    by_month: Vec<u32>,
    by_month_day: Vec<i32>,
    by_day: Vec<(i32, u32)>,
    count: Option<u32>,
    until: Option<NaiveDate>,
    wkst: u32,
}

impl Parts {
    fn text(&self) -> String {
        let mut s = format!("FREQ={};INTERVAL={}", self.freq.as_str(), self.interval);
        let join = |v: Vec<String>| v.join(",");
        if !self.by_month.is_empty() {
            s += &format!(
                ";BYMONTH={}",
                join(self.by_month.iter().map(|m| m.to_string()).collect())
            );
        }
        if !self.by_month_day.is_empty() {
            s += &format!(
                ";BYMONTHDAY={}",
                join(self.by_month_day.iter().map(|m| m.to_string()).collect())
            );
        }
        if !self.by_day.is_empty() {
            let days = self
                .by_day
                .iter()
                .map(|&(o, w)| {
                    let o = if o == 0 { String::new() } else { o.to_string() };
                    format!("{o}{}", DAY_NAMES[w as usize])
                })
                .collect();
            s += &format!(";BYDAY={}", join(days));
        }
        if let Some(c) = self.count {
            s += &format!(";COUNT={c}");
        }
        if let Some(u) = self.until {
            s += &format!(";UNTIL={}", u.format("%Y%m%d"));
        }
        s += &format!(";WKST={}", DAY_NAMES[self.wkst as usize]);
        s
    }

    /// Whether `d` satisfies the rule's day constraints for a series started at `start`.
    fn satisfied_by(&self, d: NaiveDate, start: NaiveDate) -> bool {
        let len = days_in_month(d.year(), d.month());
        let wd = d.weekday().num_days_from_monday();
        if !self.by_month.is_empty() && !self.by_month.contains(&d.month()) {
            return false;
        }
        if !self.by_month_day.is_empty()
            && !self.by_month_day.iter().any(|&k| {
                if k > 0 {
                    d.day() as i32 == k
                } else {
                    d.day() as i32 == len as i32 + 1 + k
                }
            })
        {
            return false;
        }
        let year_scope = self.freq == Frequency::Yearly && self.by_month.is_empty();
        let (n, total) = if year_scope {
            (d.ordinal(), if is_leap(d.year()) { 366 } else { 365 })
        } else {
            (d.day(), len)
        };
        if !self.by_day.is_empty()
            && !self.by_day.iter().any(|&(o, w)| {
                w == wd
                    && (o == 0
                        || (o > 0 && (n - 1) / 7 + 1 == o as u32)
                        || (o < 0 && (total - n) / 7 + 1 == (-o) as u32))
            })
        {
            return false;
        }
        let free_day = self.by_month_day.is_empty() && self.by_day.is_empty();
        match self.freq {
            Frequency::Weekly if self.by_day.is_empty() => {
                wd == start.weekday().num_days_from_monday()
            }
            Frequency::Monthly if free_day => d.day() == start.day().min(len),
            Frequency::Yearly if free_day => {
                d.day() == start.day().min(len)
                    && (!self.by_month.is_empty() || d.month() == start.month())
            }
            _ => true,
        }
    }
}

fn arb_parts() -> impl Strategy<Value = Parts> {
    let freq = prop_oneof![
        Just(Frequency::Daily),
        Just(Frequency::Weekly),
        Just(Frequency::Monthly),
        Just(Frequency::Yearly),
    ];
    (
        freq,
        prop_oneof![3 => Just(1u32), 1 => 2u32..5],
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(1u32..=12, 1..4)],
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(prop_oneof![1i32..=31, -31i32..=-1], 1..3)],
        prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec((prop_oneof![3 => Just(0i32), 1 => 1i32..=5, 1 => -5i32..=-1], 0u32..7), 1..4)],
        prop_oneof![2 => Just(None), 1 => (1u32..40).prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => (0i64..2000).prop_map(|d| Some(date(2026, 1, 1) + Duration::days(d)))],
        0u32..7,
    )
        .prop_map(|(freq, interval, by_month, mut by_month_day, mut by_day, count, until, wkst)| {
            if freq == Frequency::Weekly {
                by_month_day.clear();
            }
            if matches!(freq, Frequency::Daily | Frequency::Weekly) {
                for d in &mut by_day {
                    d.0 = 0;
                }
            }
            let until = if count.is_some() { None } else { until };
            Parts { freq, interval, by_month, by_month_day, by_day, count, until, wkst }
        })
}

fn arb_start() -> impl Strategy<Value = NaiveDate> {
    (0i64..(365 * 20)).prop_map(|d| date(2020, 1, 1) + Duration::days(d))
}

fn arb_recurrence() -> impl Strategy<Value = Recurrence> {
    prop_oneof![
        arb_parts().prop_map(|p| rule(&p.text())),
        prop::sample::select(vec![
            "daily",
            "weekly",
            "monthly",
            "yearly",
            "weekdays",
            "every 2 weeks",
            "every 3 months",
            "every monday and thursday",
            "every other year"
        ])
        .prop_map(rule),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn next_occurrence_is_strictly_after_due_and_completion(
        r in arb_recurrence(),
        start in arb_start(),
        late in 0i64..400,
        has_due in any::<bool>(),
    ) {
        let due = due_at(start);
        let done = due.instant() + Duration::days(late) - Duration::hours(1);
        let current = has_due.then_some(&due);
        if let Some(o) = next_occurrence(&r, current, 0, done) {
            let reference = if has_due { start.max(done.date_naive()) } else { done.date_naive() };
            prop_assert!(o.due.date > reference);
            prop_assert!(o.index >= 1);
        }
    }

    #[test]
    fn occurrences_increase_and_satisfy_the_rule(p in arb_parts(), start in arb_start()) {
        let r = rule(&p.text());
        let occ = r.occurrences(&due_at(start), 60);
        for w in occ.windows(2) {
            prop_assert!(w[0].date < w[1].date);
        }
        for o in &occ {
            prop_assert!(o.date >= start);
            prop_assert!(p.satisfied_by(o.date, start), "{} from {start}: {}", p.text(), o.date);
        }
        if let Some(c) = p.count {
            prop_assert!(occ.len() <= c as usize);
        }
        if let Some(u) = p.until {
            prop_assert!(occ.iter().all(|o| o.date <= u));
        }
    }

    #[test]
    fn following_next_equals_the_rules_first_occurrences(
        p in arb_parts(),
        start in arb_start(),
        n in 1usize..30,
    ) {
        let r = rule(&p.text());
        // start the series on its first occurrence, as RFC 5545 asks of DTSTART
        let Some(first) = r.occurrences(&due_at(start), 1).first().copied() else { return Ok(()) };
        let expected: Vec<NaiveDate> = r.occurrences(&first, n).iter().map(|d| d.date).collect();
        let got = chain(&r, first, n);
        prop_assert_eq!(got, expected, "{}", p.text());
    }

    #[test]
    fn count_and_until_bound_the_series(p in arb_parts(), start in arb_start()) {
        let r = rule(&p.text());
        let Some(first) = r.occurrences(&due_at(start), 1).first().copied() else { return Ok(()) };
        let got = chain(&r, first, 200);
        if let Some(c) = p.count {
            prop_assert!(got.len() <= c as usize);
            prop_assert!(got.len() == 200.min(c as usize) || r.occurrences(&first, 200).len() == got.len());
        }
        if let Some(u) = p.until {
            prop_assert!(got.iter().all(|d| *d <= u));
        }
    }

    #[test]
    fn display_parses_back_to_the_same_rule(r in arb_recurrence()) {
        let text = r.to_string();
        let back = Recurrence::parse(&text).unwrap();
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn anchored_rules_round_trip(r in arb_recurrence(), start in arb_start()) {
        let a = r.anchored_at(start);
        prop_assert_eq!(Recurrence::parse(&a.to_string()).unwrap(), a.clone());
        // anchoring does not change the series
        let s = due_at(start);
        let x: Vec<_> = r.occurrences(&s, 24);
        let y: Vec<_> = a.occurrences(&s, 24);
        prop_assert_eq!(x, y);
    }

    #[test]
    fn no_input_makes_the_parser_panic(s in "\\PC{0,80}") {
        let _ = Recurrence::parse(&s);
    }

    #[test]
    fn no_rrule_like_input_makes_the_parser_panic(
        s in "(RRULE:)?(FREQ|INTERVAL|BYDAY|BYMONTHDAY|BYMONTH|COUNT|UNTIL|WKST|RSCALE|SKIP|BYSETPOS)=[-+0-9A-Za-z,]{0,12}(;(FREQ|INTERVAL|BYDAY|BYMONTHDAY|BYMONTH|COUNT|UNTIL|WKST|SKIP)=[-+0-9A-Z,T]{0,16}){0,5}"
    ) {
        if let Ok(r) = Recurrence::parse(&s) {
            prop_assert_eq!(Recurrence::parse(&r.to_string()).unwrap(), r);
        }
    }
}
