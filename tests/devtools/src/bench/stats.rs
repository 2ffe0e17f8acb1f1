//! Median, minimum and maximum of repeated measurements.

/// A summary of repeated measurements of one quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// The middle value (the mean of the two middle values for an even count).
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// How many measurements.
    pub(crate) n: usize,
}

impl Summary {
    /// The summary of `values`, or `None` when there are none. NaNs are ignored.
    pub(crate) fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            n,
        })
    }
}

/// The median of whole counts, rounded down to a whole count when the two middle counts differ.
pub(crate) fn median_count(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_counts_take_the_middle_value() {
        let s = Summary::of(&[5.0, 1.0, 3.0]);
        assert_eq!(
            s,
            Some(Summary {
                median: 3.0,
                min: 1.0,
                max: 5.0,
                n: 3
            })
        );
    }

    #[test]
    fn even_counts_average_the_two_middle_values() {
        let s = Summary::of(&[4.0, 1.0, 2.0, 10.0]);
        assert_eq!(
            s.map(|s| (s.median, s.min, s.max, s.n)),
            Some((3.0, 1.0, 10.0, 4))
        );
    }

    #[test]
    fn one_value_and_none() {
        assert_eq!(
            Summary::of(&[2.5]).map(|s| (s.median, s.min, s.max)),
            Some((2.5, 2.5, 2.5))
        );
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn count_medians() {
        assert_eq!(median_count(&[0, 0, 7]), Some(0));
        assert_eq!(median_count(&[3, 4]), Some(3));
        assert_eq!(median_count(&[]), None);
    }
}
