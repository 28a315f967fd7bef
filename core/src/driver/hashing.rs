//! `integrity`: hashing the stored file behind the download, so that
//! completion has only the rest to read back.

use super::*;

impl<T, S, K> Driver<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    /// Every digest the finished file must match.
    pub(super) fn expected(&self) -> Vec<Expected> {
        self.options
            .integrity
            .iter()
            .chain(self.repr_digest.borrow().iter())
            .cloned()
            .collect()
    }

    /// Hashes the stored file from its start as its pieces are stored, until
    /// `done`, on the CPU the download leaves idle: completion then reads
    /// back only what is left ([`Driver::verify`]). Any doubt (a failed
    /// read, bytes discarded meanwhile) leaves the work to `verify`.
    pub(super) async fn hash_behind(&self, done: &Signal) {
        while !done.is_fired() {
            // Checked each time: the first response may add a Repr-Digest.
            let expected = self.expected();
            if expected.is_empty() {
                return;
            }
            let at = {
                let mut hashed = self.hashed.borrow_mut();
                match hashed.as_ref() {
                    Some(h) if h.expected == expected => h.at,
                    _ => {
                        let check = integrity::Check::new(expected.clone());
                        *hashed = Some(Hashed {
                            expected,
                            check,
                            at: 0,
                        });
                        0
                    }
                }
            };
            let Some((piece, part)) = self.stored_part_at(at) else {
                let committed = self.committed.borrow().clone();
                race(committed.wait(), done.wait()).await;
                continue;
            };
            let bytes = match self.store.read(&self.options.id, piece, part).await {
                Ok(bytes) if bytes.len() as u64 == part.len() => bytes,
                _ => return,
            };
            // Unless the stored bytes were discarded meanwhile.
            if let Some(h) = self.hashed.borrow_mut().as_mut().filter(|h| h.at == at) {
                h.check.update(&bytes);
                h.at = part.end;
            }
        }
    }

    /// A complete download opened with an `integrity` it was not checked
    /// against is checked now (and discarded if it does not match); the
    /// record remembers a match, so it is hashed once.
    pub(super) async fn check_stored_integrity(&self) -> Result<(), Error> {
        let Some(wanted) = self.options.integrity.as_ref().map(|e| e.fingerprint()) else {
            return Ok(());
        };
        let mut record = {
            let state = self.state.borrow();
            if !state.record.complete || state.record.verified.as_ref() == Some(&wanted) {
                return Ok(());
            }
            state.record.clone()
        };
        self.verify().await?;
        record.verified = Some(wanted);
        self.store
            .save_record(&self.options.id, &record.encode())
            .await?;
        self.state.borrow_mut().record = record;
        Ok(())
    }
}
