//! A test store that keeps whole bodies (as IndexedDB does) or streams,
//! counts the bytes read back and checks its writes against the records saved.

use super::*;
use resumable_fetch::core::StoreError;

/// The memory store, asking for whole bodies as IndexedDB does (or not),
/// counting the bytes read back, and watching its writes: each takes a few
/// turns of the executor, so writes of several connections can overlap, and
/// every record saved must claim only pieces whose write has finished.
#[derive(Clone, Default)]
pub struct WholeStore {
    pub inner: Store,
    pub streams: bool,
    pub read: Rc<Cell<u64>>,
    /// Whether it lets the driver write pieces at once.
    pub concurrent: bool,
    pub writing: Rc<Cell<u32>>,
    pub most_writing: Rc<Cell<u32>>,
    pub written: Rc<std::cell::RefCell<Vec<ByteRange>>>,
}

impl resumable_fetch::core::store::Store for WholeStore {
    type Chunk = Vec<u8>;
    type Assembled = Vec<Vec<u8>>;

    async fn load(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.load(id).await
    }
    async fn save_record(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        let claimed = Record::decode(record).expect("the driver saves records that decode");
        for piece in claimed.pieces.iter() {
            assert!(
                self.written.borrow().contains(&piece),
                "a record claims {piece} before its write finished"
            );
        }
        self.inner.save_record(id, record).await
    }
    async fn write(
        &self,
        id: &str,
        piece: ByteRange,
        chunks: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.writing.set(self.writing.get() + 1);
        self.most_writing
            .set(self.most_writing.get().max(self.writing.get()));
        for _ in 0..3 {
            yield_now().await;
        }
        let written = self.inner.write(id, piece, chunks).await;
        self.writing.set(self.writing.get() - 1);
        if written.is_ok() {
            self.written.borrow_mut().push(piece);
        }
        written
    }
    fn concurrent_writes(&self) -> bool {
        self.concurrent
    }
    async fn reset(&self, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.inner.reset(id, record).await
    }
    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.inner.remove(id).await
    }
    async fn list(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.list().await
    }
    async fn read(
        &self,
        id: &str,
        piece: ByteRange,
        part: ByteRange,
    ) -> Result<Vec<u8>, StoreError> {
        self.read.set(self.read.get() + part.len());
        self.inner.read(id, piece, part).await
    }
    async fn assemble(&self, id: &str, pieces: &[ByteRange]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.assemble(id, pieces).await
    }
    fn takes_whole_bodies(&self) -> bool {
        !self.streams
    }
}

pub type WholeDl = resumable_fetch::core::Driver<ScriptedTransport, WholeStore, VirtualClock>;

pub fn open_whole(
    server: &Rc<Server>,
    store: &WholeStore,
    options: resumable_fetch::core::Options,
) -> WholeDl {
    block_on(resumable_fetch::core::Driver::open(
        ScriptedTransport(server.clone()),
        store.clone(),
        server.clock.clone(),
        options,
    ))
    .expect("open")
}

pub fn run_whole(dl: &WholeDl) -> Result<Outcome, resumable_fetch::core::Error> {
    block_on(dl.run(&|_| {}))
}
