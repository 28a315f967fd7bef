//! One ranged request and its body: sending it, checking its head against
//! the record, reading the body into pieces (streamed, or taken whole where
//! the network is fast), and learning validators from it.

use super::*;
use std::future::Future;

impl<T, S, K> Driver<T, S, K>
where
    T: Transport,
    S: Store<Chunk = ChunkOf<T>>,
    K: Clock,
{
    /// A GET of `range`, with `If-Range` when a strong ETag is known. A
    /// response head that does not come within the stall timeout is a stall.
    /// Halted once `max_requests` were sent: the run pauses.
    pub(super) async fn send(
        &self,
        range: Option<ByteRange>,
        halt: &Signal,
    ) -> Result<Response<T::Body>, Fetched<T::Body>> {
        if self.out_of_requests() {
            return Err(Fetched::Halted);
        }
        self.requests.set(self.requests.get() + 1);
        let if_range = match &self.state.borrow().record.validators.etag {
            Some(tag @ EntityTag::Strong(_)) if range.is_some() => Some(tag.as_header()),
            _ => None,
        };
        let request = Request {
            url: self.url(),
            range,
            if_range,
            headers: self.options.headers.clone(),
        };
        match self.wait(self.transport.send(&request), halt).await {
            Waited::Done(Ok(response)) => Ok(response),
            Waited::Done(Err(e)) => Err(Fetched::Failed(e.into())),
            Waited::Stalled => Err(Fetched::Failed(self.stalled())),
            Waited::Halted => Err(Fetched::Halted),
        }
    }

    /// Classifies a response against the record (which it does not change).
    pub(super) fn check(&self, head: &ResponseHead, asked: ByteRange) -> Checked {
        response::check(head, asked, &self.state.borrow().record, &self.url())
    }

    /// A response to a range request: the range it sends (or the end of
    /// the file), or what else it means for the run, the same wherever a
    /// range is asked for.
    pub(super) fn answered(
        &self,
        response: Response<T::Body>,
        asked: ByteRange,
    ) -> Answered<T::Body> {
        match self.check(&response.head, asked) {
            Checked::Range { range, total, same } => Answered::Range {
                response,
                range,
                total,
                same,
            },
            Checked::EndOfFile { total, same } => Answered::EndOfFile {
                response,
                total,
                same,
            },
            Checked::Whole(None) => Answered::Other(Fetched::Restart(
                RestartReason::RangesIgnored,
                Some(response),
            )),
            Checked::Whole(Some(change)) => Answered::Other(self.changed(change, Some(response))),
            Checked::Changed(change) => Answered::Other(self.changed(change, None)),
            Checked::Rejected(e) => Answered::Other(Fetched::Failed(e)),
        }
    }

    /// What a change on the server means under `onServerChange`.
    pub(super) fn changed(
        &self,
        change: Change,
        response: Option<Response<T::Body>>,
    ) -> Fetched<T::Body> {
        match self.options.on_server_change {
            OnServerChange::Restart => Fetched::Restart(RestartReason::Changed(change), response),
            OnServerChange::Fail => Fetched::Failed(ServerError::Changed(change).into()),
        }
    }

    /// One ranged GET: check the response, read the body (whole if
    /// `take_whole` and the transport can), store what arrived.
    pub(super) async fn fetch(
        &self,
        claim: ByteRange,
        take_whole: bool,
        halt: &Signal,
        on_event: &dyn Fn(&Event),
    ) -> Fetched<T::Body> {
        let sent_at = self.clock.now_ms();
        let response = match self.send(Some(claim), halt).await {
            Ok(response) => response,
            Err(fetched) => return fetched,
        };
        let (mut response, body_range) = match self.answered(response, claim) {
            Answered::Range {
                response,
                range,
                total,
                same,
            } => {
                if let Err(fetched) = self.prove(same, halt).await {
                    return fetched;
                }
                self.learn(&response.head, total);
                (response, range)
            }
            Answered::EndOfFile {
                response,
                total,
                same,
            } => {
                if let Err(fetched) = self.prove(same, halt).await {
                    return fetched;
                }
                self.learn(&response.head, Some(total));
                return Fetched::Progress;
            }
            Answered::Other(fetched) => return fetched,
        };
        let Some(keep) = body_range.intersect(&claim) else {
            return Fetched::Failed(
                ServerError::WrongRange {
                    asked: claim,
                    got: body_range,
                }
                .into(),
            );
        };
        // A body the runtime may have decoded must be exactly as long as its
        // Content-Range (`read_kept`).
        let strict = response.head.content_encoding.is_hidden();
        let streamed = Cell::new(0);
        let count = |n| {
            self.count_received(n, on_event);
            streamed.set(streamed.get() + n);
            let elapsed = self.clock.now_ms().saturating_sub(sent_at);
            self.pace.streaming(streamed.get(), elapsed);
        };
        // Whole only when the body is exactly the claim: nothing to skip or leave.
        let whole = match take_whole && keep == body_range {
            true => {
                self.read_whole_block(&mut response.body, keep.len(), halt)
                    .await
            }
            false => None,
        };
        let (chunks, got, end) = match whole {
            Some((chunks, got, end)) => {
                count(got);
                (chunks, got, end)
            }
            None => {
                let body = &mut response.body;
                self.read_kept(body, body_range, keep, strict, halt, &count)
                    .await
            }
        };
        drop(response); // aborts the request if the body is not finished
        let end = match (strict, end) {
            (true, BodyEnd::Ended) => BodyEnd::Wrong(too_short(body_range, got)),
            (_, end) => end,
        };
        let elapsed = self.clock.now_ms().saturating_sub(sent_at);
        self.pace
            .block_ended(matches!(end, BodyEnd::Done), got, elapsed);
        let end = match end {
            // Cut off before this run saw the server send a range as it is:
            // kept only once a small range proves it does.
            BodyEnd::Broken(e) if strict && got > 0 && !self.identity_seen.get() => {
                match self.prove_identity(keep, halt).await {
                    true => BodyEnd::Broken(e),
                    false => BodyEnd::Wrong(e),
                }
            }
            BodyEnd::Halted if strict && got > 0 && !self.identity_seen.get() => {
                BodyEnd::Wrong(Error::Network("halted before its length was known".into()))
            }
            end => end,
        };
        let wrong = matches!(end, BodyEnd::Wrong(_));
        if got > 0 && !wrong {
            let piece = ByteRange {
                start: keep.start,
                end: keep.start + got,
            };
            if let Err(e) = self.commit(piece, chunks, on_event).await {
                return Fetched::Failed(e);
            }
        }
        match end {
            BodyEnd::Done => Fetched::Progress,
            BodyEnd::Halted => Fetched::Halted,
            BodyEnd::Wrong(_) if halt.is_fired() => Fetched::Halted,
            BodyEnd::Wrong(e) => Fetched::Failed(e),
            // Keep what arrived; the rest is claimed again.
            _ if got > 0 => Fetched::Progress,
            BodyEnd::Ended => Fetched::Failed(ended_early()),
            BodyEnd::Broken(e) => Fetched::Failed(e),
        }
    }

    /// Reads up to `want` bytes after skipping `skip`, until the body ends,
    /// fails, stalls or the round halts, telling `received` of every chunk
    /// kept. The unread tail of the last chunk is left in `carry`, where the
    /// next read of the same body starts.
    pub(super) async fn read_body(
        &self,
        body: &mut T::Body,
        carry: &mut Option<ChunkOf<T>>,
        mut skip: u64,
        want: u64,
        halt: &Signal,
        received: &dyn Fn(u64),
    ) -> (Vec<ChunkOf<T>>, u64, BodyEnd) {
        let mut chunks = Vec::new();
        let mut got = 0;
        let end = loop {
            if got == want {
                break BodyEnd::Done;
            }
            if halt.is_fired() {
                break BodyEnd::Halted;
            }
            let chunk = match carry.take() {
                Some(chunk) => chunk,
                None => match self.wait(body.next(), halt).await {
                    Waited::Done(Ok(Some(chunk))) => chunk,
                    Waited::Done(Ok(None)) => break BodyEnd::Ended,
                    Waited::Done(Err(e)) => break BodyEnd::Broken(e.into()),
                    Waited::Stalled => break BodyEnd::Broken(self.stalled()),
                    Waited::Halted => break BodyEnd::Halted,
                },
            };
            let len = chunk.len();
            if skip >= len {
                skip -= len;
                continue;
            }
            let take = (len - skip).min(want - got);
            if skip + take < len {
                *carry = Some(chunk.slice(skip + take, len));
            }
            let chunk = if skip == 0 && take == len {
                chunk
            } else {
                chunk.slice(skip, skip + take)
            };
            skip = 0;
            got += take;
            chunks.push(chunk);
            received(take);
        };
        (chunks, got, end)
    }

    /// The body taken whole ([`Body::whole`]), within the stall timeout for
    /// all of it; `None` if the transport cannot, and the body is untouched.
    pub(super) async fn read_whole_block(
        &self,
        body: &mut T::Body,
        want: u64,
        halt: &Signal,
    ) -> Option<(Vec<ChunkOf<T>>, u64, BodyEnd)> {
        let (chunk, end) = match self.wait(body.whole(), halt).await {
            Waited::Done(None) => return None,
            Waited::Done(Some(Ok(chunk))) => match chunk.len() {
                len if len == want => (chunk, BodyEnd::Done),
                len if len > want => {
                    let range = ByteRange {
                        start: 0,
                        end: want,
                    };
                    let error = ServerError::BodyLength {
                        range,
                        length: format!("a body of {len} bytes"),
                    };
                    return Some((Vec::new(), 0, BodyEnd::Wrong(error.into())));
                }
                _ => (chunk, BodyEnd::Ended),
            },
            Waited::Done(Some(Err(e))) => return Some((Vec::new(), 0, BodyEnd::Broken(e.into()))),
            Waited::Stalled => return Some((Vec::new(), 0, BodyEnd::Broken(self.stalled()))),
            Waited::Halted => return Some((Vec::new(), 0, BodyEnd::Halted)),
        };
        let got = chunk.len();
        let chunks = if got > 0 { vec![chunk] } else { Vec::new() };
        Some((chunks, got, end))
    }

    /// Streams a whole-file (200) response from byte 0, storing a piece per
    /// block. The record was reset before.
    pub(super) async fn stream_whole_file(
        &self,
        mut response: Response<T::Body>,
        on_event: &dyn Fn(&Event),
    ) -> RoundEnd<T::Body> {
        let total = response::learn_whole(&mut self.state.borrow_mut().record, &response.head);
        self.take_digest(&response.head);
        let halt = self.halt.borrow().clone();
        let mut offset = 0u64;
        let mut carry = None;
        loop {
            let want = total.map_or(self.options.block_size, |t| {
                (t - offset).min(self.options.block_size)
            });
            let count = |n| self.count_received(n, on_event);
            let (chunks, got, end) = self
                .read_body(&mut response.body, &mut carry, 0, want, &halt, &count)
                .await;
            if got > 0 {
                let piece = ByteRange {
                    start: offset,
                    end: offset + got,
                };
                if let Err(e) = self.commit(piece, chunks, on_event).await {
                    return RoundEnd::Failed(e);
                }
                offset += got;
            }
            match end {
                BodyEnd::Done if total == Some(offset) => return RoundEnd::Ran,
                BodyEnd::Done => {}
                BodyEnd::Ended if total.is_none() => {
                    // A clean end is the end when no length was announced.
                    self.state.borrow_mut().record.validators.total = Some(offset);
                    return RoundEnd::Ran;
                }
                BodyEnd::Ended => return RoundEnd::Retry(ended_early()),
                BodyEnd::Broken(e) => return RoundEnd::Retry(e),
                BodyEnd::Wrong(e) => return RoundEnd::Failed(e),
                BodyEnd::Halted => return RoundEnd::Halted,
            }
        }
    }

    /// Reads the bytes `keep` of a body whose Content-Range is `range`. One
    /// whose encoding is hidden (`strict`: the runtime may have decoded it)
    /// must hold exactly `range`: it is read to its end, and one that ends
    /// early or runs long is `Wrong`. Every cross-origin body reads as
    /// strict (an absent header cannot be told from a hidden one), so one
    /// cut off by the network still keeps what arrived once the run has seen
    /// the server send a range as it is (`identity_seen`, or
    /// [`Driver::prove_identity`]): a dropped connection must not cost
    /// the block.
    pub(super) async fn read_kept(
        &self,
        body: &mut T::Body,
        range: ByteRange,
        keep: ByteRange,
        strict: bool,
        halt: &Signal,
        received: &dyn Fn(u64),
    ) -> (Vec<ChunkOf<T>>, u64, BodyEnd) {
        let mut rest = None;
        let skip = keep.start - range.start;
        let (chunks, got, end) = self
            .read_body(body, &mut rest, skip, keep.len(), halt, received)
            .await;
        let end = match (strict, end) {
            (true, BodyEnd::Done) => {
                let rest = rest.map_or(0, |c| c.len());
                let after = range.end - keep.end;
                let end = self.body_end(body, rest, after, range, halt).await;
                if matches!(end, BodyEnd::Done) {
                    self.identity_seen.set(true);
                }
                end
            }
            (true, BodyEnd::Ended) => BodyEnd::Wrong(too_short(range, got)),
            (_, end) => end,
        };
        (chunks, got, end)
    }

    /// After the bytes kept of a body whose encoding is hidden: exactly
    /// `after` more must follow before it ends, as its Content-Range `range`
    /// says (`rest` of them came with the last chunk kept), else it is not
    /// the range. Each read brings bytes or the end, so this ends.
    pub(super) async fn body_end(
        &self,
        body: &mut T::Body,
        rest: u64,
        after: u64,
        range: ByteRange,
        halt: &Signal,
    ) -> BodyEnd {
        let mut extra = rest;
        loop {
            if extra > after {
                let length = "more bytes".into();
                return BodyEnd::Wrong(ServerError::BodyLength { range, length }.into());
            }
            match self.wait(body.next(), halt).await {
                Waited::Done(Ok(None)) if extra == after => return BodyEnd::Done,
                Waited::Done(Ok(None)) => {
                    let got = range.len() - (after - extra);
                    return BodyEnd::Wrong(too_short(range, got));
                }
                Waited::Done(Ok(Some(chunk))) => extra = extra.saturating_add(chunk.len()),
                Waited::Done(Err(e)) => return BodyEnd::Broken(e.into()),
                Waited::Stalled => return BodyEnd::Broken(self.stalled()),
                Waited::Halted => return BodyEnd::Halted,
            }
        }
    }

    /// Waits for `step` (a response head, a chunk, a whole body) unless
    /// nothing arrives for `stall_timeout_ms` or the round is halted first.
    async fn wait<F: Future>(&self, step: F, halt: &Signal) -> Waited<F::Output> {
        let stall = self.clock.sleep(self.options.stall_timeout_ms);
        match race(step, race(stall, halt.wait())).await {
            Either::Left(output) => Waited::Done(output),
            Either::Right(Either::Left(())) => Waited::Stalled,
            Either::Right(Either::Right(())) => Waited::Halted,
        }
    }

    pub(super) fn stalled(&self) -> Error {
        Error::Stalled {
            ms: self.options.stall_timeout_ms,
        }
    }

    /// Counts bytes received but not yet stored, and reports progress.
    pub(super) fn count_received(&self, bytes: u64, on_event: &dyn Fn(&Event)) {
        self.state.borrow_mut().unsaved += bytes;
        self.emit(on_event, false);
    }

    /// Takes what the record lacks from a response of the proven file; once
    /// the file is known, every connection may run.
    pub(super) fn learn(&self, head: &ResponseHead, total: Option<u64>) {
        response::learn(&mut self.state.borrow_mut().record, head, total);
        self.take_digest(head);
        if self.ready_for_all_connections() {
            self.known.borrow().fire();
        }
    }

    /// Keeps the first `Repr-Digest` of the file, to check at completion.
    /// A compressed response's digest is of the compressed bytes: not ours.
    pub(super) fn take_digest(&self, head: &ResponseHead) {
        let mut kept = self.repr_digest.borrow_mut();
        if !response::says_encoded(head) && kept.is_none() {
            *kept = head
                .repr_digest
                .value()
                .and_then(integrity::parse_repr_digest);
        }
    }
}

/// A body of `got` bytes that ended before the `range` it announced.
fn too_short(range: ByteRange, got: u64) -> Error {
    ServerError::BodyLength {
        range,
        length: format!("{got} bytes"),
    }
    .into()
}

/// How waiting on the network ended ([`Driver::wait`]).
enum Waited<O> {
    Done(O),
    /// Nothing arrived for `stall_timeout_ms`.
    Stalled,
    Halted,
}

/// A range request's response, checked ([`Driver::answered`]).
pub(super) enum Answered<B> {
    /// A 206 for `range` (see [`Checked::Range`]).
    Range {
        response: Response<B>,
        range: ByteRange,
        total: Option<u64>,
        same: bool,
    },
    /// A 416: the file ends at `total`, where the range starts.
    EndOfFile {
        response: Response<B>,
        total: u64,
        same: bool,
    },
    /// Not a range: what it means for the run.
    Other(Fetched<B>),
}
