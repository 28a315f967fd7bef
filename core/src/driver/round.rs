//! Rounds: the loop of a run (probe, then every connection), each
//! connection's loop of requests, backoff after failures, and restarts when
//! the file changed.

use super::*;

impl<T, S, K> Driver<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    pub(super) async fn drive(&self, on_event: &dyn Fn(&Event)) -> Result<Outcome, Error> {
        let mut carried = None;
        let mut restarts = 0;
        let mut failures = 0;
        let mut idle_rounds = 0;
        let received_before = self.received();
        loop {
            if self.pause_requested.get() {
                return Ok(Outcome::Paused);
            }
            if self.suspended.get() {
                let wake = self.wake.borrow().clone();
                wake.wait().await;
                continue;
            }
            *self.halt.borrow_mut() = Signal::new();
            let proof = self.needs_final_proof();
            if !proof && self.finish_if_complete().await? {
                return Ok(Outcome::Complete);
            }
            if self.out_of_requests() {
                return Ok(Outcome::Paused);
            }
            let before = self.footprint();
            let end = match carried.take() {
                Some(response) => self.stream_whole_file(response, on_event).await,
                None if proof => self.final_proof().await,
                None => self.run_connections(on_event).await,
            };
            match end {
                RoundEnd::Ran | RoundEnd::Halted => {}
                RoundEnd::Failed(e) if self.received() == received_before => {
                    return Err(self.diagnose(e).await)
                }
                RoundEnd::Failed(e) => return Err(e),
                RoundEnd::Retry(e) => {
                    failures += 1;
                    if failures > self.options.retries {
                        return Err(e);
                    }
                    let halt = self.halt.borrow().clone();
                    self.backoff(failures, &halt).await;
                }
                RoundEnd::Restart(reason, response) => {
                    restarts += 1;
                    if restarts > MAX_RESTARTS + self.options.retries {
                        return Err(match reason {
                            RestartReason::Changed(change) => {
                                ServerError::ChangedRepeatedly(change).into()
                            }
                            RestartReason::RangesIgnored => Error::Network(
                                "the server kept failing while sending the whole file".into(),
                            ),
                        });
                    }
                    self.restart(reason, on_event).await?;
                    self.proven.set(true);
                    carried = response;
                }
            }
            if self.footprint() == before && carried.is_none() && !self.suspended.get() {
                idle_rounds += 1;
                if idle_rounds > MAX_IDLE_ROUNDS {
                    return Err(Error::Internal("the download made no progress".into()));
                }
            } else {
                idle_rounds = 0;
            }
        }
    }

    /// A run that stored nothing and failed on the network: if a request
    /// without `Range` gets through, it is the range responses that fail
    /// (Chromium refuses a compressed 206 outright), not the network.
    pub(super) async fn diagnose(&self, error: Error) -> Error {
        let paused = self.pause_requested.get() || self.suspended.get();
        if !matches!(error, Error::Network(_)) || paused {
            return error;
        }
        // The failed round fired its halt; a pause from now on fires this one.
        let halt = Signal::new();
        *self.halt.borrow_mut() = halt.clone();
        match self.send(None, &halt).await {
            // Dropped unread: the request is aborted.
            Ok(response) if (200..300).contains(&response.head.status) => {
                ServerError::RangesFail.into()
            }
            _ => error,
        }
    }

    /// What a round can change: stored bytes, what is known, whether proven.
    pub(super) fn footprint(&self) -> Footprint {
        let state = self.state.borrow();
        Footprint {
            received: state.record.received(),
            total: state.record.total(),
            resumable: state.record.resumable,
            proven: self.proven.get(),
            proven_at_end: self.proven_at_end.get(),
        }
    }

    /// One round of connections. While the file's length or range support
    /// is unknown, or the stored bytes unproven, the first connection (the
    /// probe) runs alone; the others join as soon as its response makes the
    /// file known, while it reads on, and stay out if it ends first. Where
    /// the store takes whole bodies they also give it a moment to show the
    /// network's speed ([`JUDGE_PARTS`]).
    pub(super) async fn run_connections(&self, on_event: &dyn Fn(&Event)) -> RoundEnd<T::Body> {
        let halt = self.halt.borrow().clone();
        let known = Signal::new();
        if self.ready_for_all_connections() {
            known.fire();
        }
        *self.known.borrow_mut() = known.clone();
        let turned_fast = self.pace.new_round();
        let judge = !known.is_fired() && self.store.takes_whole_bodies();
        let probe_ended = Signal::new();
        let done = Signal::new();
        let connection = |i| {
            let (halt, known, turned_fast, probe_ended) =
                (&halt, &known, &turned_fast, &probe_ended);
            async move {
                if i == 0 {
                    let end = self.connection(halt, on_event).await;
                    probe_ended.fire();
                    return end;
                }
                if let Either::Right(()) = race(known.wait(), probe_ended.wait()).await {
                    return RoundEnd::Ran;
                }
                if judge && !self.pace.is_fast() {
                    let moment = self.clock.sleep(pace::JUDGE_MS);
                    race(turned_fast.wait(), race(moment, probe_ended.wait())).await;
                }
                self.connection(halt, on_event).await
            }
        };
        let connections = async {
            let ends = join_all((0..self.options.connections).map(connection)).await;
            done.fire();
            ends
        };
        let (ends, ()) = join(connections, self.hash_behind(&done)).await;
        let mut outcome = RoundEnd::Ran;
        for end in ends {
            match (&outcome, end) {
                (RoundEnd::Restart(..), _) => {}
                (_, end @ RoundEnd::Restart(..)) => outcome = end,
                (RoundEnd::Failed(_), _) => {}
                (_, end @ RoundEnd::Failed(_)) => outcome = end,
                (_, RoundEnd::Halted) => outcome = RoundEnd::Halted,
                _ => {}
            }
        }
        outcome
    }

    /// One connection: claims ranges and fetches them one after another,
    /// retrying transient failures with backoff.
    pub(super) async fn connection(
        &self,
        halt: &Signal,
        on_event: &dyn Fn(&Event),
    ) -> RoundEnd<T::Body> {
        let mut failures = 0;
        loop {
            if halt.is_fired() {
                return RoundEnd::Halted;
            }
            if self.out_of_requests() {
                return RoundEnd::Ran; // the run pauses when the others are done
            }
            // One decision for the claim's size and how its body is read: a
            // block of `whole_block_size` is never held in memory.
            let take_whole = self.pace.is_fast() && self.store.takes_whole_bodies();
            let claim = {
                let block = match take_whole {
                    true => self.options.whole_block_size,
                    false => self.options.block_size,
                };
                let state = &mut *self.state.borrow_mut();
                state
                    .plan
                    .claim(&state.record.pieces, state.record.total(), block)
            };
            let Some(claim) = claim else {
                return RoundEnd::Ran;
            };
            let fetched = self.fetch(claim, take_whole, halt, on_event).await;
            self.state.borrow_mut().plan.release(claim);
            match fetched {
                Fetched::Progress => failures = 0,
                Fetched::Halted => return RoundEnd::Halted,
                Fetched::Failed(e) if e.is_transient() && failures < self.options.retries => {
                    failures += 1;
                    if !self.backoff(failures, halt).await {
                        return RoundEnd::Halted;
                    }
                }
                Fetched::Failed(e) => {
                    halt.fire();
                    return RoundEnd::Failed(e);
                }
                Fetched::Restart(reason, response) => {
                    halt.fire();
                    return RoundEnd::Restart(reason, response);
                }
            }
        }
    }

    /// The length and range support are known, and the stored bytes proven:
    /// every connection may run.
    pub(super) fn ready_for_all_connections(&self) -> bool {
        let state = self.state.borrow();
        state.record.resumable && state.record.total().is_some() && self.proven.get()
    }

    /// `max_requests` were sent in this run.
    pub(super) fn out_of_requests(&self) -> bool {
        self.options
            .max_requests
            .is_some_and(|limit| self.requests.get() >= limit)
    }

    /// Sleeps before retry number `failures` (exponential, with jitter so
    /// that many clients do not retry in step). False if halted meanwhile.
    pub(super) async fn backoff(&self, failures: u32, halt: &Signal) -> bool {
        let ms = backoff_ms(failures, next_random(&mut self.state.borrow_mut().rng));
        matches!(
            race(self.clock.sleep(ms), halt.wait()).await,
            Either::Left(())
        )
    }

    /// Discards every stored byte and starts over.
    pub(super) async fn restart(
        &self,
        reason: RestartReason,
        on_event: &dyn Fn(&Event),
    ) -> Result<(), Error> {
        if self.discard_stored().await? {
            on_event(&Event::Restarted(reason));
        }
        Ok(())
    }

    /// Stores a record that claims nothing (keeping when the download was
    /// first stored) and forgets the file's digest; `true` if bytes were
    /// discarded.
    pub(super) async fn discard_stored(&self) -> Result<bool, Error> {
        let (fresh, had_bytes) = {
            let state = self.state.borrow();
            let mut fresh = Record::new(&self.options.id, &self.url(), self.clock.now_ms());
            fresh.created_at = state.record.created_at;
            (fresh, !state.record.pieces.is_empty())
        };
        if had_bytes {
            self.store.reset(&self.options.id, &fresh.encode()).await?;
        }
        // Another file, or another try: its digest comes with its responses.
        self.proven_at_end.set(false);
        self.repr_digest.borrow_mut().take();
        self.hashed.borrow_mut().take();
        let mut state = self.state.borrow_mut();
        state.record = fresh;
        state.meter.reset();
        Ok(had_bytes)
    }
}

/// What a round can change; a round that changes none of it made no
/// progress.
#[derive(PartialEq, Eq)]
pub(super) struct Footprint {
    received: u64,
    total: Option<u64>,
    resumable: bool,
    proven: bool,
    proven_at_end: bool,
}

/// The wait before retry number `failures`: between half and all of a
/// ceiling that doubles from `BACKOFF_BASE_MS` up to `BACKOFF_MAX_MS`, the
/// place within it drawn from `random`.
fn backoff_ms(failures: u32, random: u64) -> u64 {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX_MS);
    ceiling / 2 + random % (ceiling / 2 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_with_jitter_in_its_upper_half() {
        for (failures, ceiling) in [(0, 500), (1, 500), (2, 1_000), (3, 2_000), (7, 30_000)] {
            assert_eq!(backoff_ms(failures, 0), ceiling / 2, "{failures}");
            assert_eq!(backoff_ms(failures, ceiling / 2), ceiling, "{failures}");
            assert_eq!(
                backoff_ms(failures, ceiling / 2 + 1),
                ceiling / 2,
                "{failures}"
            );
        }
        assert!(backoff_ms(u32::MAX, u64::MAX) <= BACKOFF_MAX_MS);
    }
}
