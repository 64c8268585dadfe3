use proptest::prelude::*;

use super::*;

const LIMIT: usize = 1 << 20;

#[test]
fn every_request_and_reply_comes_back_as_it_was_sent() {
    let hello = Hello {
        node: "n1".into(),
        incarnation: 7,
        running: 3,
        free_slots: 5,
        queued: 9,
        draining: true,
        queues: vec![QueueHello {
            name: "mail".into(),
            running: 1,
            queued: 2,
            free_slots: 3,
        }],
    };
    let requests = [
        Request::Ping(hello.clone()),
        Request::Hint {
            queue: "mail".into(),
            ids: vec![[1; 16], [2; 16]],
        },
        Request::Status { id: [3; 16] },
        Request::Deliver {
            request: b"{\"x\":1}".to_vec(),
        },
    ];
    for r in requests {
        assert_eq!(decode::<Request>(&encode(&r), LIMIT), Ok(r));
    }
    let replies = [
        Reply::Pong(hello),
        Reply::Status(Some(b"{}".to_vec())),
        Reply::Status(None),
        Reply::Refused("no".into()),
    ];
    for r in replies {
        assert_eq!(decode::<Reply>(&encode(&r), LIMIT), Ok(r));
    }
}

#[test]
fn the_variants_keep_their_positions_on_the_wire() {
    // A peer of an older build decodes by position: these bytes must never change.
    assert_eq!(encode(&Request::Status { id: [0; 16] })[..2], [VERSION, 2]);
    assert_eq!(encode(&Reply::Refused(String::new())), vec![VERSION, 2, 0]);
}

#[test]
fn oversized_empty_and_foreign_messages_are_refused_with_the_reason() {
    let big = encode(&Request::Deliver {
        request: vec![0; 100],
    });
    assert!(matches!(
        decode::<Request>(&big, 50),
        Err(WireError::TooLarge { limit: 50, .. })
    ));
    assert_eq!(
        decode::<Request>(&[], LIMIT),
        Err(WireError::Version { found: None })
    );
    assert_eq!(
        decode::<Request>(&[9, 0], LIMIT),
        Err(WireError::Version { found: Some(9) })
    );
    let err = decode::<Request>(&[VERSION, 200], LIMIT).unwrap_err();
    assert!(matches!(err, WireError::Malformed(_)), "{err}");
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Request>(&bytes, LIMIT);
        let _ = decode::<Reply>(&bytes, LIMIT);
        let mut versioned = vec![VERSION];
        versioned.extend_from_slice(&bytes);
        let _ = decode::<Request>(&versioned, LIMIT);
        let _ = decode::<Reply>(&versioned, LIMIT);
    }

    #[test]
    fn a_mutated_message_decodes_or_is_refused(flip in 0usize..64, to in any::<u8>()) {
        let mut bytes = encode(&Request::Hint { queue: "q".into(), ids: vec![[7; 16]; 3] });
        let i = flip % bytes.len();
        bytes[i] = to;
        let _ = decode::<Request>(&bytes, LIMIT);
    }
}
