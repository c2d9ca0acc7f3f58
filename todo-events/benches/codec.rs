//! Encode and decode cost per event type: structured JSON both ways, and binary-mode decode.
//!
//! Run with `cargo bench -p todo-events --bench codec`. The inputs are the golden fixtures of
//! `tests/fixtures/`, the design's examples.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use todo_events::binding::{self, Mode};
use todo_events::{Event, EventType};

fn fixture(ty: EventType) -> Event {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}.json", ty.as_str()));
    let bytes = std::fs::read(&path).expect("fixture present");
    Event::from_slice(&bytes).expect("fixture decodes")
}

fn codec(c: &mut Criterion) {
    for ty in EventType::ALL {
        let event = fixture(ty);
        let json = event.to_vec();
        let record = binding::encode(&event, Mode::Binary);

        let mut group = c.benchmark_group(ty.as_str());
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_function("encode_structured", |b| {
            b.iter(|| black_box(&event).to_vec())
        });
        group.bench_function("decode_structured", |b| {
            b.iter(|| Event::from_slice(black_box(&json)).expect("decodes"))
        });
        group.bench_function("encode_binary", |b| {
            b.iter(|| binding::encode(black_box(&event), Mode::Binary))
        });
        group.bench_function("decode_binary", |b| {
            b.iter(|| {
                binding::decode(black_box(&record.headers), black_box(&record.value))
                    .expect("decodes")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
