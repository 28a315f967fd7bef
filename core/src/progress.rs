//! Progress: bytes received, speed and time left.

use std::collections::VecDeque;

/// What `onprogress` receives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub received: u64,
    pub total: Option<u64>,
    /// Over the last few seconds; 0 until two samples exist.
    pub bytes_per_second: f64,
    /// `None` while the total or the speed is unknown.
    pub eta_seconds: Option<f64>,
}

/// Speed over a sliding window of (time, bytes) samples, so that one stall or
/// one burst does not swing the estimate.
#[derive(Debug, Default)]
pub struct Meter {
    samples: VecDeque<(u64, u64)>,
}

const WINDOW_MS: u64 = 5_000;

impl Meter {
    /// Adds a sample and returns the progress it implies.
    pub fn sample(&mut self, now_ms: u64, received: u64, total: Option<u64>) -> Progress {
        // A restart makes `received` go back: forget the old samples.
        if self.samples.back().is_some_and(|&(_, b)| b > received) {
            self.samples.clear();
        }
        self.samples.push_back((now_ms, received));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(t, _)| now_ms.saturating_sub(t) > WINDOW_MS)
        {
            self.samples.pop_front();
        }
        let bytes_per_second = match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1 > t0 => {
                (b1 - b0) as f64 * 1000.0 / (t1 - t0) as f64
            }
            _ => 0.0,
        };
        let eta_seconds = match total {
            Some(t) if bytes_per_second > 0.0 => {
                Some(t.saturating_sub(received) as f64 / bytes_per_second)
            }
            Some(t) if t <= received => Some(0.0),
            _ => None,
        };
        Progress {
            received,
            total,
            bytes_per_second,
            eta_seconds,
        }
    }

    pub fn reset(&mut self) {
        self.samples.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_and_eta_over_the_window() {
        let mut m = Meter::default();
        let p = m.sample(0, 0, Some(10_000));
        assert_eq!(p.bytes_per_second, 0.0);
        assert_eq!(p.eta_seconds, None);
        let p = m.sample(1000, 1000, Some(10_000));
        assert_eq!(p.bytes_per_second, 1000.0);
        assert_eq!(p.eta_seconds, Some(9.0));
        // Old samples leave the window: the speed follows the recent rate.
        for s in 2..=10 {
            m.sample(s * 1000, 1000 + (s - 1) * 100, Some(10_000));
        }
        let p = m.sample(11_000, 2000, Some(10_000));
        assert!((p.bytes_per_second - 100.0).abs() < 1.0, "{p:?}");
        // Unknown total: no ETA.
        assert_eq!(m.sample(12_000, 2100, None).eta_seconds, None);
        // A restart resets the estimate.
        assert_eq!(m.sample(13_000, 0, Some(10)).bytes_per_second, 0.0);
    }
}
