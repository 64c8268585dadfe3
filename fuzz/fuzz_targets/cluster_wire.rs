//! Messages from peers of the cluster mesh: decoding any bytes as a request or a reply
//! never panics, and what decodes encodes back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskmesh::cluster::wire::{decode, encode, Reply, Request};

const LIMIT: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode::<Request>(data, LIMIT) {
        assert_eq!(decode::<Request>(&encode(&request), LIMIT).ok(), Some(request));
    }
    if let Ok(reply) = decode::<Reply>(data, LIMIT) {
        assert_eq!(decode::<Reply>(&encode(&reply), LIMIT).ok(), Some(reply));
    }
});
