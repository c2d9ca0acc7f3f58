//! Duplicate delivery on demand: republish every record of the three topics through the deployment's own broker
//! wiring (the outbox log in embedded mode, Kafka otherwise), keys, headers and payloads unchanged.

use std::collections::BTreeMap;

use anyhow::Context as _;
use todo_kafka::OutgoingRecord;

use crate::system::System;

/// Republishes everything and returns how many records each topic had.
pub(crate) async fn republish_everything(
    system: &System,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let (store_config, broker_config) = system.configs();
    let store = todo_bin::app::open_store(&store_config).await?;
    let broker = todo_bin::app::Broker::new(&broker_config, &store)?;
    let (reader, publisher) = (broker.reader(), broker.publisher());
    let mut counts = BTreeMap::new();
    for topic in todo_events::Topic::ALL {
        let name = topic.name();
        let mut records = Vec::new();
        for p in reader.partitions(name).await.context(name)? {
            // Read to the end of the partition rather than to the reported high watermark, which some brokers
            // report below the last offset; the republished records land after the end found here.
            let mut from = p.low;
            loop {
                let batch = reader.read(name, p.partition, from, 500).await?;
                let Some(last) = batch.last() else { break };
                from = last.offset + 1;
                records.extend(batch.into_iter().map(|d| OutgoingRecord {
                    topic: name.to_owned(),
                    key: d.key,
                    headers: d.headers,
                    value: d.payload.unwrap_or_default(),
                }));
            }
        }
        counts.insert(name.to_owned(), records.len());
        for ack in publisher.publish_batch(records).await {
            ack.with_context(|| format!("republishing to {name}"))?;
        }
    }
    Ok(counts)
}
