//! The murmur2 hash of Kafka's Java client (`Utils.murmur2`) and librdkafka's `murmur2_random` partitioner.

/// Kafka's murmur2 hash (seed `0x9747b28c`), bit-for-bit as the Java client's `Utils.murmur2`.
///
/// ```
/// assert_eq!(todo_kafka::murmur2(b"21") as i32, -973_932_308);
/// ```
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition of a keyed record among `partitions`, as the Java default partitioner and librdkafka's
/// `murmur2_random` choose it: `(murmur2(key) & 0x7fffffff) % partitions`.
///
/// Returns 0 when `partitions` is 0 or negative.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    ((murmur2(key) & 0x7fff_ffff) % (partitions as u32)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's `UtilsTest.testMurmur2` and librdkafka's `rdmurmur2.c` unit test.
        let cases: [(&[u8], i32); 7] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
            (b"kafka", 0xd067_cf64_u32 as i32),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input) as i32, expected, "murmur2({input:?})");
        }
    }

    #[test]
    fn empty_key_hashes_like_the_java_client() {
        // Java: Utils.murmur2(new byte[0]) == 275646681 (0x106e08d9), librdkafka's "" case.
        assert_eq!(murmur2(b""), 0x106e_08d9);
    }

    #[test]
    fn partition_is_non_negative_and_in_range() {
        for key in ["", "a", "user-1", "0f8fad5b-d9cb-469f-a165-70867728950e"] {
            let p = partition_for_key(key.as_bytes(), 3);
            assert!((0..3).contains(&p));
        }
        assert_eq!(partition_for_key(b"x", 0), 0);
    }
}
