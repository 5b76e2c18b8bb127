//! How an object is cut into parts: the plan the server makes and the byte range of each part,
//! which the client reads and the server checks.

use super::{DEFAULT_PART_SIZE, MAX_PARTS, MIB, ObjectSize, PartNumber, PartSize};

/// How an object of a given size is cut into parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    pub part_size: u64,
    pub part_count: u64,
}

impl PartPlan {
    /// The requested part size (or 8 MiB), raised to a whole MiB as needed so that the object
    /// fits in 10,000 parts. A zero-byte object is one empty part.
    pub fn new(size: ObjectSize, requested: Option<PartSize>) -> Self {
        let size = size.get();
        let mut part_size = requested.map_or(DEFAULT_PART_SIZE, PartSize::get);
        let smallest = size.div_ceil(MAX_PARTS);
        if part_size < smallest {
            part_size = smallest.div_ceil(MIB) * MIB;
        }
        let part_count = size.div_ceil(part_size).max(1);
        Self {
            part_size,
            part_count,
        }
    }

    /// The bytes `(offset, length)` of part `n` of a `size`-byte object. Every part but the
    /// last is full; a part past the end is empty, at the end.
    pub fn range(&self, size: u64, n: PartNumber) -> (u64, u64) {
        let offset = (u64::from(n.get()) - 1)
            .saturating_mul(self.part_size)
            .min(size);
        let end = offset.saturating_add(self.part_size).min(size);
        (offset, end - offset)
    }

    /// The exact size part `n` must have for the object to be `size` bytes.
    pub fn expected_part_size(&self, size: u64, n: PartNumber) -> u64 {
        self.range(size, n).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GIB, MAX_OBJECT_SIZE, MAX_PART_SIZE};

    fn plan(size: u64, requested: Option<u64>) -> PartPlan {
        PartPlan::new(
            ObjectSize::parse(size).unwrap(),
            requested.map(|r| PartSize::parse(r).unwrap()),
        )
    }

    #[test]
    fn part_plan_defaults_to_8_mib() {
        assert_eq!(
            plan(0, None),
            PartPlan {
                part_size: DEFAULT_PART_SIZE,
                part_count: 1
            }
        );
        assert_eq!(plan(1, None).part_count, 1);
        assert_eq!(plan(8 * MIB, None).part_count, 1);
        assert_eq!(plan(8 * MIB + 1, None).part_count, 2);
        assert_eq!(plan(12 * MIB, Some(5 * MIB)).part_count, 3);
    }

    #[test]
    fn part_plan_raises_part_size_to_fit_10000_parts() {
        let p = plan(MAX_OBJECT_SIZE, None);
        assert!(p.part_count <= MAX_PARTS);
        assert!(p.part_size <= MAX_PART_SIZE);
        assert_eq!(p.part_size % MIB, 0);
        let p = plan(100 * GIB, Some(5 * MIB));
        assert!(p.part_count <= MAX_PARTS);
        assert!(p.part_size > 5 * MIB);
        let p = plan(10_000 * 8 * MIB, None);
        assert_eq!(
            p,
            PartPlan {
                part_size: 8 * MIB,
                part_count: 10_000
            }
        );
    }

    #[test]
    fn expected_part_sizes_sum_to_the_object() {
        let size = 12 * MIB + 3;
        let p = plan(size, Some(5 * MIB));
        let total: u64 = (1..=p.part_count)
            .map(|n| p.expected_part_size(size, PartNumber::parse(n).unwrap()))
            .sum();
        assert_eq!(total, size);
    }

    #[test]
    fn part_ranges_cover_the_object_exactly() {
        let part = |n| PartNumber::parse(n).unwrap();
        let size = 12 * MIB + 3;
        let p = plan(size, Some(5 * MIB));
        assert_eq!(p.range(size, part(1)), (0, 5 * MIB));
        assert_eq!(p.range(size, part(2)), (5 * MIB, 5 * MIB));
        assert_eq!(p.range(size, part(3)), (10 * MIB, 2 * MIB + 3));
    }

    #[test]
    fn an_empty_object_is_one_empty_part_and_exact_multiples_end_full() {
        let part = |n| PartNumber::parse(n).unwrap();
        assert_eq!(plan(0, None).range(0, part(1)), (0, 0));
        let size = 10 * MIB;
        let p = plan(size, Some(5 * MIB));
        assert_eq!(p.part_count, 2);
        assert_eq!(p.range(size, part(2)), (5 * MIB, 5 * MIB));
        assert_eq!(p.range(size, part(3)), (size, 0), "past the end");
    }
}
