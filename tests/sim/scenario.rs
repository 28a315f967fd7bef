//! A scenario: everything one simulated run does, drawn from a seed up
//! front, so that the run is a pure function of it and a failing one can be
//! shrunk by deleting events and replayed.

use crate::scripted::{Fault, Ranges};

/// xorshift64*: the same numbers for the same seed on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed: neighbouring seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Which validators the server sends. They always follow its content: a
/// server whose strong ETag stays while the file changes cannot be helped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validators {
    Strong,
    Weak,
    LastModified,
    None,
}

/// How the store keeps bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The core's memory store: one entry per piece (as IndexedDB).
    Pieces,
    /// One file per download written at offsets, and a record beside it (as
    /// OPFS, the custom-store adapter and the Node, Deno and Durable Object
    /// stores): old bytes stay past what the record claims.
    Positional,
}

/// Something that happens at a step of the run (a step is one poll).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The page reloads or the process dies: everything in flight is lost,
    /// the download is opened again from the store.
    Crash,
    Pause,
    Offline,
    Online,
    /// The next requests go to another URL of the same file.
    SetUrl,
    /// The server's file is replaced by another of `size` bytes.
    Replace {
        seed: u64,
        size: u64,
    },
    /// The store's next operation of this kind fails or crashes half-way.
    Store(StoreFault),
    /// While nothing runs, the data (not the record) is deleted: a removal
    /// that crashed between its two steps, or a cleaner.
    LoseData,
    /// An object opened before the last completion asks for the file.
    StaleBlob,
    /// `cancel()`: the run is paused, then everything stored is deleted.
    Cancel,
    /// A second object for the same id tries to remove it while a run goes.
    SecondRemove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// `write` fails (an I/O error).
    FailWrite,
    /// `write` finds the disk full.
    Quota,
    /// The process dies inside `write`, after half the bytes reached the file.
    CrashInWrite,
    /// The process dies inside `save_record`, before the new record is in place.
    CrashInRecord,
    /// The process dies inside `reset` or `remove`, between its two steps.
    CrashInRemoval,
    /// The store answers slowly (several polls per operation).
    Slow,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub size: u64,
    pub content_seed: u64,
    pub block: u64,
    pub connections: u32,
    pub chunk: u64,
    pub validators: Validators,
    pub ranges: Ranges,
    /// Range responses are compressed and refused by the runtime.
    pub compress_ranges: bool,
    /// Content-Encoding reads as hidden (a cross-origin page).
    pub cross_origin: bool,
    /// The server compresses its range responses and the runtime decodes
    /// them (Firefox, WebKit), behind a hidden Content-Encoding: every 206.
    /// A server does this for all its ranges or none; one that mixes them
    /// could have a cut-off decoded body kept (docs/CONFORMANCE.md).
    pub decodes: bool,
    pub layout: Layout,
    pub fail_on_change: bool,
    /// The `integrity` option carries the first file's digest.
    pub integrity: bool,
    /// The server sends a `Repr-Digest` of the file it serves.
    pub repr_digest: bool,
    /// One per request, in order; requests past the end get none.
    pub faults: Vec<Fault>,
    /// Sorted by step.
    pub events: Vec<(u32, Event)>,
}

/// Steps over which events are spread: a run of a few blocks takes some
/// hundreds of polls.
const HORIZON: u64 = 900;

impl Scenario {
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let block = rng.pick(&[512, 1024]);
        let size = match rng.below(10) {
            0 => 0,
            1 => rng.below(block) + 1,
            _ => rng.below(5 * block) + 1,
        };
        let validators = rng.pick(&[
            Validators::Strong,
            Validators::Strong,
            Validators::Weak,
            Validators::LastModified,
            Validators::None,
        ]);
        let ranges = match rng.below(10) {
            0 => Ranges::Ignored,
            1 => Ranges::UnknownTotal,
            _ => Ranges::Supported,
        };
        let fault_rate = rng.pick(&[0, 5, 15, 30]);
        let faults = (0..60)
            .map(|_| match rng.chance(fault_rate) {
                true => fault(&mut rng, block),
                false => Fault::Pass,
            })
            .collect();
        let event_count = rng.below(7);
        let mut events: Vec<(u32, Event)> = (0..event_count)
            .map(|_| (rng.below(HORIZON) as u32, event(&mut rng, block)))
            .collect();
        events.sort_by_key(|(step, _)| *step);
        Self {
            size,
            content_seed: rng.next() >> 8,
            block,
            connections: rng.below(4) as u32 + 1,
            chunk: rng.pick(&[100, 300, 700, 2000]),
            validators,
            ranges,
            compress_ranges: rng.chance(3),
            cross_origin: rng.chance(50),
            decodes: rng.chance(5),
            layout: rng.pick(&[Layout::Pieces, Layout::Positional]),
            fail_on_change: rng.chance(15),
            integrity: rng.chance(20),
            repr_digest: rng.chance(15),
            faults,
            events,
        }
    }
}

fn fault(rng: &mut Rng, block: u64) -> Fault {
    match rng.below(13) {
        0 => Fault::Status(rng.pick(&[500, 503, 429, 408])),
        1 => Fault::Status(rng.pick(&[404, 403, 410])),
        // Not `Truncate`: every response here announces its length, and a
        // runtime reports a body that ends short of it as an error. A clean
        // early end of a body of no announced length is that length
        // (docs/CONFORMANCE.md): no client can tell.
        2 => Fault::Reset(rng.below(block / 4)),
        3 | 4 => Fault::Reset(rng.below(block)),
        5 => Fault::Stall(rng.below(block)),
        6 => Fault::Refuse,
        7 => Fault::Shift(rng.below(2 * block) as i64 - block as i64),
        8 => Fault::Short(rng.below(block) + 1),
        9 => Fault::LengthMismatch(rng.below(block) + 1),
        10 => Fault::NoContentRange,
        11 => Fault::Multipart,
        _ => Fault::Status(rng.pick(&[416, 302])),
    }
}

fn event(rng: &mut Rng, block: u64) -> Event {
    match rng.below(14) {
        0 | 1 => Event::Crash,
        2 => Event::Pause,
        3 => Event::Offline,
        4 => Event::Online,
        5 => Event::SetUrl,
        6 | 7 => Event::Replace {
            seed: rng.next() >> 8,
            size: rng.below(5 * block) + 1,
        },
        8 => Event::LoseData,
        9 => Event::StaleBlob,
        10 => Event::Cancel,
        11 => Event::SecondRemove,
        _ => Event::Store(rng.pick(&[
            StoreFault::FailWrite,
            StoreFault::Quota,
            StoreFault::CrashInWrite,
            StoreFault::CrashInRecord,
            StoreFault::CrashInRemoval,
            StoreFault::Slow,
        ])),
    }
}
