//! Proving stored bytes belong to the file the server has now: a strong
//! ETag, or samples fetched again and compared, on resume and once every
//! byte is stored.

use super::request::Answered;
use super::*;

impl<T, S, K> Driver<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    /// Makes sure the stored bytes belong to the file a response came from
    /// before anything of it is stored or learned: `same` (a strong ETag
    /// matched) proves it, else the stored bytes are checked once per run.
    pub(super) async fn prove(&self, same: bool, halt: &Signal) -> Result<(), Fetched<T::Body>> {
        if !same && !self.proven.get() {
            self.verify_stored(halt).await?;
        }
        self.proven.set(true);
        Ok(())
    }

    /// Fetches samples of the stored bytes again ([`Self::samples`]) and
    /// compares them with the ones stored: the proof, for a file with no
    /// strong ETag, that the server still has the file they came from.
    pub(super) async fn verify_stored(&self, halt: &Signal) -> Result<(), Fetched<T::Body>> {
        for (piece, part) in self.samples() {
            self.verify_part(piece, part, halt).await?;
        }
        Ok(())
    }

    /// The stored parts a proof fetches again: the first [`SAMPLE`] bytes,
    /// [`SAMPLE`] bytes at a random place, and the last [`OVERLAP`] bytes.
    /// A file replaced by another differs nearly everywhere; a splice of
    /// two files differs at its start or its end.
    pub(super) fn samples(&self) -> Vec<(ByteRange, ByteRange)> {
        let mut state = self.state.borrow_mut();
        let pieces: Vec<ByteRange> = state.record.pieces.iter().collect();
        let (Some(&first), Some(&last)) = (pieces.first(), pieces.last()) else {
            return Vec::new();
        };
        let random = pieces[(next_random(&mut state.rng) % pieces.len() as u64) as usize];
        let at = random.start + next_random(&mut state.rng) % random.len();
        let tail = ByteRange {
            start: last.end - last.len().min(OVERLAP),
            end: last.end,
        };
        let mut parts = vec![(last, tail)];
        // Under a request budget, the proof leaves one request to progress.
        let budget = self.options.max_requests.map_or(3, |n| n.saturating_sub(1));
        for (piece, start) in [(first, first.start), (random, at)] {
            if parts.len() as u32 >= budget {
                break;
            }
            let part = ByteRange {
                start,
                end: piece.end.min(start + SAMPLE),
            };
            if !parts
                .iter()
                .any(|(_, p)| p.start <= part.start && part.end <= p.end)
            {
                parts.insert(parts.len() - 1, (piece, part));
            }
        }
        parts
    }

    /// Fetches `part` of the stored `piece` again and compares.
    pub(super) async fn verify_part(
        &self,
        piece: ByteRange,
        part: ByteRange,
        halt: &Signal,
    ) -> Result<(), Fetched<T::Body>> {
        let response = self.send(Some(part), halt).await?;
        let (mut response, range) = match self.answered(response, part) {
            Answered::Range {
                response, range, ..
            } if range.start <= part.start && range.end >= part.end => (response, range),
            Answered::Range { range: got, .. } => {
                return Err(Fetched::Failed(
                    ServerError::WrongRange { asked: part, got }.into(),
                ))
            }
            Answered::Other(fetched) => return Err(fetched),
            Answered::EndOfFile { total, .. } => {
                return Err(Fetched::Failed(
                    ServerError::Unsatisfiable {
                        asked: part,
                        total: Some(total),
                    }
                    .into(),
                ))
            }
        };
        // Bytes the runtime may have decoded are compared only once their
        // count proves they are the file's (as in `fetch`).
        let strict = response.head.content_encoding.is_hidden();
        let body = &mut response.body;
        let (chunks, _, end) = self
            .read_kept(body, range, part, strict, halt, &|_| {})
            .await;
        match end {
            BodyEnd::Done => {}
            BodyEnd::Halted => return Err(Fetched::Halted),
            BodyEnd::Ended => return Err(Fetched::Failed(ended_early())),
            BodyEnd::Broken(e) | BodyEnd::Wrong(e) => return Err(Fetched::Failed(e)),
        }
        let mut fetched = Vec::new();
        for chunk in &chunks {
            let bytes = chunk.bytes().await;
            fetched.extend(bytes.map_err(|why| Fetched::Failed(Error::Network(why)))?);
        }
        let stored = self
            .store
            .read(&self.options.id, piece, part)
            .await
            .map_err(|e| Fetched::Failed(e.into()))?;
        match fetched.iter().zip(&stored).position(|(a, b)| a != b) {
            None if fetched.len() == stored.len() => Ok(()),
            at => {
                let offset = part.start + at.unwrap_or(fetched.len().min(stored.len())) as u64;
                Err(self.changed(Change::Content { offset }, None))
            }
        }
    }

    /// Whether the server sends ranges as they are, not compressed for the
    /// runtime to undo: a small range at `keep`'s start must come exactly
    /// as long as its Content-Range says.
    pub(super) async fn prove_identity(&self, keep: ByteRange, halt: &Signal) -> bool {
        let part = ByteRange {
            start: keep.start,
            end: keep.end.min(keep.start + SAMPLE),
        };
        let Ok(mut response) = self.send(Some(part), halt).await else {
            return false;
        };
        let range = match self.check(&response.head, part) {
            Checked::Range { range, .. } if range.start <= part.start && range.end >= part.end => {
                range
            }
            _ => return false,
        };
        let strict = response.head.content_encoding.is_hidden();
        let body = &mut response.body;
        let (_, _, end) = self
            .read_kept(body, range, part, strict, halt, &|_| {})
            .await;
        matches!(end, BodyEnd::Done)
    }

    /// Every byte is stored, from a server with no strong ETag: a change
    /// during the run may have gone unseen (a weak ETag or Last-Modified
    /// may stay, and with neither nor a length nothing shows it), so the
    /// stored bytes are sampled against the server once more.
    pub(super) fn needs_final_proof(&self) -> bool {
        let state = self.state.borrow();
        let record = &state.record;
        let strong = matches!(record.validators.etag, Some(EntityTag::Strong(_)));
        !record.complete
            && !strong
            && record.resumable
            && !self.proven_at_end.get()
            && !record.pieces.is_empty()
            && record.total().is_some_and(|t| record.pieces.covers(t))
    }

    /// The last proof before completion, as a round.
    pub(super) async fn final_proof(&self) -> RoundEnd<T::Body> {
        let halt = self.halt.borrow().clone();
        match self.verify_stored(&halt).await {
            Ok(()) | Err(Fetched::Progress) => {
                self.proven_at_end.set(true);
                RoundEnd::Ran
            }
            Err(Fetched::Halted) => RoundEnd::Halted,
            Err(Fetched::Failed(e)) if e.is_transient() => RoundEnd::Retry(e),
            Err(Fetched::Failed(e)) => RoundEnd::Failed(e),
            Err(Fetched::Restart(reason, response)) => RoundEnd::Restart(reason, response),
        }
    }

    /// Hashes the stored file, read back in parts, against every digest
    /// expected of it. A file that does not match is discarded: it must
    /// never be handed out, and the next `start()` downloads it again.
    pub(super) async fn verify(&self) -> Result<(), Error> {
        let expected = self.expected();
        if expected.is_empty() {
            return Ok(());
        }
        let pieces: Vec<ByteRange> = self.state.borrow().record.pieces.iter().collect();
        // What `hash_behind` hashed already, if it was for these digests.
        let (mut check, hashed) = match self.hashed.borrow_mut().take() {
            Some(h) if h.expected == expected => (h.check, h.at),
            _ => (integrity::Check::new(expected), 0),
        };
        for piece in pieces {
            let mut start = piece.start.max(hashed);
            while start < piece.end {
                let part = ByteRange {
                    start,
                    end: piece.end.min(start + VERIFY_STEP),
                };
                let bytes = self.store.read(&self.options.id, piece, part).await?;
                if bytes.len() as u64 != part.len() {
                    return Err(StoreError::new(
                        StoreErrorKind::Corrupt,
                        format!("bytes {part} read back short"),
                    )
                    .into());
                }
                check.update(&bytes);
                start = part.end;
            }
        }
        let Err(mismatch) = check.finish() else {
            return Ok(());
        };
        self.discard_stored().await?;
        Err(Error::IntegrityMismatch(mismatch))
    }

    /// The stored piece holding byte `at`, and the part of it from `at` to hash next.
    pub(super) fn stored_part_at(&self, at: u64) -> Option<(ByteRange, ByteRange)> {
        let state = self.state.borrow();
        let piece = state
            .record
            .pieces
            .iter()
            .find(|p| p.start <= at && at < p.end)?;
        let end = piece.end.min(at + VERIFY_STEP);
        Some((piece, ByteRange { start: at, end }))
    }
}
