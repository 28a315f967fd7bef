//! A one-shot stop signal that many futures can wait on, `race` and `join_all`.
//!
//! `pause()` and a failing connection both stop every connection of a run:
//! each one races its network reads and sleeps against the run's signal, so a
//! stop takes effect at the next await without polling a flag.

use futures_util::future::{maybe_done, select, Either, MaybeDone};
use std::cell::RefCell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Clone, Default)]
pub struct Signal(Rc<RefCell<State>>);

#[derive(Default)]
struct State {
    fired: bool,
    wakers: Vec<Waker>,
}

impl Signal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fire(&self) {
        let wakers = {
            let mut state = self.0.borrow_mut();
            state.fired = true;
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn is_fired(&self) -> bool {
        self.0.borrow().fired
    }

    /// Resolves once the signal fires (at once if it has).
    pub async fn wait(&self) {
        std::future::poll_fn(|cx: &mut Context<'_>| {
            let mut state = self.0.borrow_mut();
            if state.fired {
                return Poll::Ready(());
            }
            // One task usually waits many times: keep one waker per task.
            if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// Runs two futures until the first finishes; `a` wins a tie. The loser is
/// dropped (for a network read: aborted).
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    match select(pin!(a), pin!(b)).await {
        Either::Left((a, _)) => Either::Left(a),
        Either::Right((b, _)) => Either::Right(b),
    }
}

/// Runs the futures concurrently until all have finished; their outputs in
/// order. For a handful of futures (a round's connections), polling each on
/// every wake is cheap, and it leaves out futures_util's `join_all`, whose
/// path for many futures (FuturesOrdered) the wasm carries otherwise.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut all: Vec<Pin<Box<MaybeDone<F>>>> = futures
        .into_iter()
        .map(|f| Box::pin(maybe_done(f)))
        .collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut pending = false;
        for future in &mut all {
            pending |= future.as_mut().poll(cx).is_pending();
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(
            all.iter_mut()
                .filter_map(|future| future.as_mut().take_output())
                .collect(),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn wakes_every_waiter() {
        let signal = Signal::new();
        let (a, b) = (signal.clone(), signal.clone());
        let fire = async {
            signal.fire();
        };
        block_on(async {
            let waiters = futures_util::future::join(a.wait(), b.wait());
            futures_util::future::join(waiters, fire).await;
        });
        assert!(signal.is_fired());
    }

    #[test]
    fn race_prefers_the_first_ready_future() {
        let out = block_on(race(async { 1 }, async { 2 }));
        assert!(matches!(out, Either::Left(1)));
        let out = block_on(race(std::future::pending::<u8>(), async { 2 }));
        assert!(matches!(out, Either::Right(2)));
    }
    #[test]
    fn join_all_waits_for_every_future_and_keeps_their_order() {
        let signal = Signal::new();
        let waiting = |n| {
            let signal = signal.clone();
            async move {
                signal.wait().await;
                n
            }
        };
        let fire = async {
            signal.fire();
            0
        };
        let futures: Vec<std::pin::Pin<Box<dyn Future<Output = i32>>>> =
            vec![Box::pin(waiting(1)), Box::pin(waiting(2)), Box::pin(fire)];
        assert_eq!(block_on(join_all(futures)), [1, 2, 0]);
        assert!(block_on(join_all(Vec::<std::future::Ready<u8>>::new())).is_empty());
    }
}
