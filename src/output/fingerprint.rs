//! The fingerprint of a file's bytes, as the nightly's manifest gives it for every output
//! file and for the warehouse's files together: xxh3-64, 16 hex digits.
//!
//! Small inputs (the model and policy files, the training rows) keep FNV-1a
//! ([`arq_models::model::Fingerprint`]): the model artifacts store it. Files are hashed
//! by the gigabyte every night — the 3.2 GB warehouse and 1.5 GB of outputs at a
//! million customers — where FNV-1a, a byte at a time, took ~5 s of CPU
//! (benches/README.md).

use std::hash::Hasher;

use twox_hash::XxHash3_64;

/// A running fingerprint of bytes.
pub struct FileFingerprint(XxHash3_64);

impl Default for FileFingerprint {
    fn default() -> Self {
        FileFingerprint(XxHash3_64::with_seed(0))
    }
}

impl FileFingerprint {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(parts: &[&[u8]]) -> String {
        let mut f = FileFingerprint::default();
        for p in parts {
            f.update(p);
        }
        f.hex()
    }

    #[test]
    fn is_xxh3_64_of_the_bytes_however_they_arrive() {
        // The reference value of XXH3_64bits("") with seed 0.
        assert_eq!(of(&[]), "2d06800538d394c2");
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = of(&[&bytes]);
        assert_eq!(of(&[&bytes[..1], &bytes[1..4097], &bytes[4097..]]), whole);
        assert_eq!(whole, format!("{:016x}", XxHash3_64::oneshot(&bytes)));
        let mut changed = bytes.clone();
        changed[99_999] ^= 1;
        assert_ne!(of(&[&changed]), whole);
    }
}
