//! Encodings and cross-origin responses: compressed or decoded bodies, and
//! headers CORS hides (Content-Range, Content-Encoding), told apart from a
//! file sent as it is.

use super::*;

#[test]
fn a_compressed_206_is_rejected() {
    let server = Server::new(3000, 24);
    *server.content_encoding.borrow_mut() = Some("gzip".into());
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE");
    assert!(err.to_string().contains("Content-Encoding: gzip"));
    assert_eq!(dl.received(), 0);
}

#[test]
fn a_content_range_hidden_by_cors_names_the_header_to_expose() {
    let server = Server::new(3000, 25);
    server.hide_content_range.set(true);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "CORS_HEADERS_HIDDEN");
    assert!(err
        .to_string()
        .contains("Access-Control-Expose-Headers: Content-Range"));
}

#[test]
fn a_206_decoded_behind_a_hidden_content_encoding_is_never_stored() {
    // Firefox and WebKit decode a compressed 206 and hide Content-Encoding
    // from a cross-origin page: its bytes are other bytes, more of them.
    let server = Server::new(4096, 46);
    after_probe(&server, &[Fault::Decoded]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE", "{err}");
    assert_eq!(dl.received(), 1024, "only the probe's block is stored");
    assert_record_claims_only_stored_bytes(&store, &dl, &server);
}

#[test]
fn a_whole_body_with_a_hidden_encoding_ends_where_it_ends() {
    use resumable_fetch::core::transport::Header;
    use resumable_fetch::core::transport::{
        Body, Request, Response, ResponseHead, Transport, TransportError,
    };
    /// A cross-origin 200 whose Content-Length (safelisted) counts the
    /// compressed bytes while its Content-Encoding reads null.
    struct Compressed;
    struct Decoded(Option<Vec<u8>>);
    impl Body for Decoded {
        type Chunk = Vec<u8>;
        async fn next(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
            Ok(self.0.take())
        }
    }
    impl Transport for Compressed {
        type Body = Decoded;
        async fn send(&self, _: &Request) -> Result<Response<Decoded>, TransportError> {
            Ok(Response {
                head: ResponseHead {
                    status: 200,
                    content_length: Header::Present("100".into()),
                    content_encoding: Header::Hidden,
                    ..Default::default()
                },
                body: Decoded(Some(vec![7u8; 3000])),
            })
        }
    }
    let store: resumable_fetch::core::memory::MemoryStore<Vec<u8>> = Default::default();
    let dl = block_on(resumable_fetch::core::Driver::open(
        Compressed,
        store,
        VirtualClock::default(),
        options(BLOCK, 1),
    ))
    .unwrap();
    assert_eq!(block_on(dl.run(&|_| {})), Ok(Outcome::Complete));
    assert_eq!(dl.total(), Some(3000));
    assert_eq!(block_on(dl.assemble()).unwrap().concat(), vec![7u8; 3000]);
}

#[test]
fn range_responses_the_runtime_refuses_are_told_from_a_network_failure() {
    // Chromium fails every fetch of a compressed 206: after the retries, one
    // request without Range shows the server is there.
    let server = Server::new(4096, 54);
    server.compress_ranges.set(true);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 2));
    let err = run(&dl).0.unwrap_err();
    assert_eq!(err.code(), "BAD_RESPONSE", "{err}");
    assert!(err.to_string().contains("gzip_static"), "{err}");
    let log = server.log.borrow();
    assert_eq!(
        log.last().map(|s| s.asked),
        Some(None),
        "the plain request: {log:?}"
    );
    assert_eq!(log.last().map(|s| s.sent), Some(0), "its body left unread");
    drop(log);
    // A network that is really down stays NETWORK.
    let down = Server::new(4096, 55);
    (0..20).for_each(|_| down.fault(Fault::Refuse));
    let dl = open(&down, &Store::new(), options(BLOCK, 1));
    assert_eq!(run(&dl).0.unwrap_err().code(), "NETWORK");
}

#[test]
fn a_cross_origin_206_longer_than_asked_is_read_to_its_end_and_its_bytes_kept() {
    // Content-Encoding reads as hidden on every cross-origin response: a
    // shifted body is read past what is kept, to prove its length.
    let server = Server::new(4096, 56);
    server.hide_content_encoding.set(true);
    after_probe(&server, &[Fault::Shift(-100)]);
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[1].body, Some(r(924, 1948)));
    assert_eq!(log[1].sent, 1024, "read to its end");
    assert_eq!(log[2].asked, Some(r(1948, 2048)), "the rest, exactly");
}

#[test]
fn a_cross_origin_body_cut_off_keeps_what_arrived_once_a_small_range_proves_it() {
    // Cross-origin, Content-Encoding always reads as hidden, so a body cut
    // off could be a decoded one: a small range first proves the server
    // sends ranges as they are, then the cut-off bytes are kept.
    let server = Server::new(4096, 58);
    server.hide_content_encoding.set(true);
    server.fault(Fault::Reset(600));
    let store = Store::new();
    let dl = open(&server, &store, options(BLOCK, 1));
    assert_eq!(run(&dl).0, Ok(Outcome::Complete));
    assert_eq!(bytes(&dl), server.content());
    let log = server.log.borrow();
    assert_eq!(log[0].sent, 600, "cut off");
    assert_eq!(log[1].asked, Some(r(0, 1024)), "the small range: {log:?}");
    assert_eq!(
        log[2].asked,
        Some(r(600, 1024)),
        "then exactly the rest: {log:?}"
    );
}
