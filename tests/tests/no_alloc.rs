//! Parsing, decoding every attribute and verifying an ICE Binding request allocate
//! nothing (floe-stun's zero-copy promise), measured with a counting global allocator.
#![allow(unsafe_code)] // the GlobalAlloc below; it only counts and forwards to System.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use floe_stun::attributes::*;
use floe_stun::{IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards every call unchanged to `System`; the counter is a thread-local Cell
// with a const initializer, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn parse_decode_and_verify_of_an_ice_check_allocate_nothing() {
    let key = IntegrityKey::short_term("asd88jdf0s9dfjs0d9f8jq").unwrap();
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([1; 12]),
    )
    .unwrap();
    b.add(&Username("rR7x2mQ9:Lp4vK8sZ")).unwrap();
    b.add(&Priority(1_853_824_767)).unwrap();
    b.add(&IceControlling(7)).unwrap();
    b.add(&UseCandidate).unwrap();
    b.add_message_integrity(&key).unwrap();
    b.add_fingerprint().unwrap();
    let len = b.len();
    let bytes = &buf[..len];

    let mut seen = 0u64;
    let n = allocations_in(|| {
        let msg = Message::parse(bytes).unwrap();
        seen += msg.get::<Username>().unwrap().unwrap().0.len() as u64;
        seen += u64::from(msg.get::<Priority>().unwrap().unwrap().0);
        seen += msg.get::<IceControlling>().unwrap().unwrap().0;
        seen += u64::from(msg.get::<UseCandidate>().unwrap().is_some());
        for raw in msg.attributes() {
            let _ = decode_known(&raw, &msg.transaction_id()).unwrap();
        }
        msg.verify(&key).unwrap();
    });
    assert!(seen > 0);
    assert_eq!(n, 0, "parse + decode + verify allocated {n} times");
}

#[test]
fn encoding_into_a_caller_buffer_allocates_nothing() {
    let key = IntegrityKey::short_term("asd88jdf0s9dfjs0d9f8jq").unwrap();
    let mut buf = [0u8; 256];
    let n = allocations_in(|| {
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::BINDING_SUCCESS,
            TransactionId([2; 12]),
        )
        .unwrap();
        b.add(&XorMappedAddress(([203, 0, 113, 7], 49152).into()))
            .unwrap();
        b.add_message_integrity(&key).unwrap();
        b.add_fingerprint().unwrap();
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
}
