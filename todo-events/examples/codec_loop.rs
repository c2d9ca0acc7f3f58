//! Encodes or decodes one event many times: a steady loop for counting instructions per event, which, unlike
//! time, is the same from run to run on a shared machine.
//!
//! ```sh
//! cargo build --release -p todo-events --example codec_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/codec_loop todo-events/tests/fixtures/task.created.json decode 5000
//! ```
//!
//! Run it with 0 and with N iterations: the difference of the two totals over N is the cost of one event.

use std::process::ExitCode;

use todo_events::Event;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, op, n] = args.as_slice() else {
        eprintln!("usage: codec_loop <fixture.json> encode|decode <iterations>");
        return ExitCode::from(64);
    };
    let (Ok(bytes), Ok(n)) = (std::fs::read(path), n.parse::<usize>()) else {
        eprintln!("codec_loop: cannot read {path}, or {n} is not a count");
        return ExitCode::from(66);
    };
    let event = match Event::from_slice(&bytes) {
        Ok(event) => event,
        Err(e) => {
            eprintln!("codec_loop: {path}: {e}");
            return ExitCode::from(65);
        }
    };
    // What the encoder writes, the form every consumer decodes.
    let json = event.to_vec();
    let mut bytes_seen = 0usize;
    for _ in 0..n {
        bytes_seen += match op.as_str() {
            "decode" => {
                Event::from_slice(std::hint::black_box(&json)).map_or(0, |e| e.source().len())
            }
            "encode" => std::hint::black_box(&event).to_vec().len(),
            _ => {
                eprintln!("codec_loop: `{op}` is neither encode nor decode");
                return ExitCode::from(64);
            }
        };
    }
    println!("{bytes_seen}");
    ExitCode::SUCCESS
}
