//! The `todo` binary.

fn main() {
    println!("todo: the server is not built yet; the topic registry:");
    for t in todo_events::TOPICS {
        println!(
            "  {:<24} partitions={} retention={}d",
            t.name, t.partitions, t.retention_days
        );
    }
}
