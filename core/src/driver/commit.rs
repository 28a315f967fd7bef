//! Storing a piece and the record that claims it, and finishing once every
//! byte is stored.

use super::*;

impl<T, S, K> Driver<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    /// Stores a piece, then the record that claims it; only then does the
    /// in-memory record claim it too. Records are saved one at a time, each
    /// claiming every piece stored before it; where the store allows it
    /// ([`Store::concurrent_writes`]) the pieces themselves are written at once.
    pub(super) async fn commit(
        &self,
        piece: ByteRange,
        chunks: Vec<ChunkOf<T>>,
        on_event: &dyn Fn(&Event),
    ) -> Result<(), Error> {
        let overlap = || Error::Internal(format!("piece {piece} overlaps a stored one"));
        let id = &self.options.id;
        let serial = match self.store.concurrent_writes() {
            true => None,
            false => Some(self.commit_lock.lock().await),
        };
        let overlaps = self.state.borrow().record.pieces.overlaps(piece);
        let written = match overlaps {
            true => Err(overlap()),
            false => self
                .store
                .write(id, piece, chunks)
                .await
                .map_err(Error::from),
        };
        let _one_at_a_time = match serial {
            Some(guard) => guard,
            None => self.commit_lock.lock().await,
        };
        let now = self.clock.now_ms();
        let stored = async {
            written?;
            let mut next = self.state.borrow().record.clone();
            next.updated_at = now;
            if !next.pieces.insert(piece) {
                return Err(overlap());
            }
            self.store
                .save_record(id, &next.encode())
                .await
                .map_err(Error::from)
        }
        .await;
        {
            let mut state = self.state.borrow_mut();
            state.unsaved -= piece.len();
            if stored.is_ok() {
                state.record.pieces.insert(piece);
                state.record.updated_at = now;
            }
        }
        stored?;
        let committed = std::mem::replace(&mut *self.committed.borrow_mut(), Signal::new());
        committed.fire();
        self.emit(on_event, false);
        Ok(())
    }

    /// Marks the record complete once its pieces tile the whole file.
    pub(super) async fn finish_if_complete(&self) -> Result<bool, Error> {
        if self.is_complete() {
            self.check_stored_integrity().await?;
            return Ok(true);
        }
        let done = {
            let state = self.state.borrow();
            let record = &state.record;
            match record.total() {
                Some(total) if record.pieces.covers(total) => {}
                _ => return Ok(false),
            }
            let mut done = record.clone();
            done.complete = true;
            done.updated_at = self.clock.now_ms();
            done.verified = self.options.integrity.as_ref().map(|e| e.fingerprint());
            done
        };
        self.verify().await?;
        self.store
            .save_record(&self.options.id, &done.encode())
            .await?;
        self.state.borrow_mut().record = done;
        Ok(true)
    }
}
