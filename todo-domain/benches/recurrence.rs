//! Next-occurrence speed per rule kind, against the `rrule` crate computing the same occurrence in the same run.
//!
//! Run with `cargo bench -p todo-domain --bench recurrence`. Each group has two functions: `todo-domain`
//! ([`todo_domain::next_due`] from the current instance) and `rrule-oracle` (an `RRuleSet` with DTSTART at the
//! current instance, iterated to its first occurrence after it). Both answers are checked to agree before timing.

use std::hint::black_box;

use chrono::{Duration, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};
use todo_domain::{Due, Recurrence, next_due};

const KINDS: [(&str, &str, (i32, u32, u32)); 7] = [
    ("daily", "FREQ=DAILY", (2026, 2, 10)),
    ("weekly", "FREQ=WEEKLY", (2026, 2, 10)),
    (
        "weekdays",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        (2026, 2, 13),
    ),
    ("monthly", "FREQ=MONTHLY", (2026, 2, 10)),
    ("monthly-31st", "FREQ=MONTHLY;BYMONTHDAY=31", (2026, 1, 31)),
    (
        "monthly-last-friday",
        "FREQ=MONTHLY;BYDAY=-1FR",
        (2026, 1, 30),
    ),
    ("yearly", "FREQ=YEARLY", (2026, 2, 10)),
];

fn bench(c: &mut Criterion) {
    for (name, text, (y, m, d)) in KINDS {
        let rule = Recurrence::parse(text).expect("benchmark rule parses");
        let start = NaiveDate::from_ymd_opt(y, m, d).expect("benchmark date is valid");
        let due = Due::on(start);
        let done = due.instant() - Duration::hours(1);
        let set: rrule::RRuleSet =
            format!("DTSTART:{}T000000Z\nRRULE:{text}", start.format("%Y%m%d"))
                .parse()
                .expect("oracle parses the benchmark rule");

        let ours = next_due(&rule, Some(&due), 0, done).map(|d| d.date);
        let oracle = (&set)
            .into_iter()
            .map(|t| t.date_naive())
            .find(|t| *t > start);
        assert_eq!(ours, oracle, "{name}: todo-domain and the oracle disagree");

        let mut group = c.benchmark_group(format!("next/{name}"));
        group.bench_function("todo-domain", |b| {
            b.iter(|| next_due(black_box(&rule), Some(black_box(&due)), 0, black_box(done)))
        });
        group.bench_function("rrule-oracle", |b| {
            b.iter(|| {
                black_box(&set)
                    .into_iter()
                    .find(|t| t.date_naive() > black_box(start))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
