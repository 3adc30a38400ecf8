//! Lanes: the long-lived streams a sender keeps per operator and protocol.
//!
//! Each of an operator's [`LANES_PER_PEER`] lanes is a task that owns at
//! most one stream at a time and a bounded queue of messages waiting for
//! it. Holding a message and no stream, it opens one and waits for the
//! receiver's greeting before writing a byte: a stream libp2p reset on
//! arrival (the receiver's accept queue holds one stream per protocol, for
//! every peer) or refused (the peer's share of streams is taken) is opened
//! again after a pause, no message having been written on it. On an open
//! stream it writes message after message without waiting for each answer
//! (at most `queue_per_peer` unanswered, the most the receiver may hold of
//! ours) and hands the answers, which come in order, to the senders.
//!
//! Backpressure is explicit at each step: a sender waits while its lane's
//! queue is full, the lane waits while its window of unanswered messages
//! is, and the receiver reads one frame of a stream at a time, so that a
//! slow receiver slows the writes (yamux flow control) instead of queueing
//! bytes anywhere. A sender whose caller gave up is skipped unwritten.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::send::{retry_pause, STREAM_RETRIES};
use super::{Protocol, LANES_PER_PEER};
use crate::codec::{self, Status};
use crate::gate::Shared;
use crate::metrics::ProtocolLabel;

/// Messages that may wait for one lane; a sender beyond waits for room
/// (within its caller's timeout).
const JOBS_PER_LANE: usize = 256;
/// How long a new stream may take to be greeted.
const GREETING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the oldest unanswered message may wait for its answer: the
/// receiver gives a frame 30 s to arrive once it began (waits for room or
/// for the sender's rate included), and answers as soon as it is queued
/// or refused.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(35);
/// How long a lane whose write failed still reads answers (a refusal the
/// receiver sent before it stopped reading).
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// What became of a message handed to a lane; a lane that drops the
/// sender instead lost its stream before an answer.
#[derive(Debug)]
pub(super) enum Answer {
    /// The receiver's one-byte status.
    Status(u8),
    /// The message cannot be sent on this protocol (the peer does not
    /// support it).
    Failed(String),
}

/// A message waiting for, or written on, a lane.
struct Job {
    bytes: Arc<Vec<u8>>,
    answer: oneshot::Sender<Answer>,
    pending: Pending,
}

/// A message's bytes counted in its lane's load until it is answered or
/// given up.
struct Pending {
    load: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.load.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The sending end of one lane's task.
struct Lane {
    jobs: mpsc::Sender<Job>,
    /// The bytes of the messages waiting for it or unanswered on it.
    load: Arc<AtomicUsize>,
}

/// Each operator's lanes per protocol.
type LaneMap = BTreeMap<(PeerId, &'static str), Arc<Vec<Lane>>>;

/// Every operator's lanes, created at its first message on a protocol:
/// at most operators × protocols × [`LANES_PER_PEER`] tasks, which end
/// with the last handle on the network.
pub(super) struct Lanes {
    shared: Arc<Shared>,
    control: libp2p_stream::Control,
    lanes: Mutex<LaneMap>,
}

impl Lanes {
    pub(super) fn new(shared: Arc<Shared>, control: libp2p_stream::Control) -> Lanes {
        Lanes {
            shared,
            control,
            lanes: Mutex::new(BTreeMap::new()),
        }
    }

    fn lanes(&self) -> MutexGuard<'_, LaneMap> {
        // A map of channels: a panic elsewhere leaves it usable.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message on the operator's least loaded lane of the
    /// protocol (the caller checked that the peer is an operator and the
    /// protocol registered); waits while that lane's queue is full. The
    /// answer comes on the receiver, which fails if the lane's stream
    /// failed before an answer.
    pub(super) async fn submit(
        &self,
        peer: PeerId,
        protocol: &Protocol,
        bytes: Arc<Vec<u8>>,
    ) -> Result<oneshot::Receiver<Answer>, String> {
        let lanes = self.lanes_of(peer, protocol)?;
        let lane = lanes
            .iter()
            .min_by_key(|lane| lane.load.load(Ordering::Relaxed))
            .ok_or_else(|| "no lane".to_string())?;
        let (answer, receiver) = oneshot::channel();
        lane.load.fetch_add(bytes.len(), Ordering::Relaxed);
        let pending = Pending {
            load: lane.load.clone(),
            bytes: bytes.len(),
        };
        let job = Job {
            bytes,
            answer,
            pending,
        };
        // The task ends only when this sender is dropped: a failed send
        // drops the job, and the receiver says so.
        let _ = lane.jobs.send(job).await;
        Ok(receiver)
    }

    fn lanes_of(&self, peer: PeerId, protocol: &Protocol) -> Result<Arc<Vec<Lane>>, String> {
        let mut all = self.lanes();
        if let Some(lanes) = all.get(&(peer, protocol.name)) {
            return Ok(lanes.clone());
        }
        let id = StreamProtocol::try_from_owned(protocol.id()).map_err(|e| e.to_string())?;
        let opening = Arc::new(tokio::sync::Mutex::new(()));
        let lanes: Vec<Lane> = (0..LANES_PER_PEER)
            .map(|_| {
                let (jobs, queue) = mpsc::channel(JOBS_PER_LANE);
                let task = LaneTask {
                    shared: self.shared.clone(),
                    control: self.control.clone(),
                    peer,
                    protocol: protocol.name,
                    id: id.clone(),
                    window: protocol.queue_per_peer.max(1),
                    opening: opening.clone(),
                };
                tokio::spawn(task.run(queue));
                Lane {
                    jobs,
                    load: Arc::new(AtomicUsize::new(0)),
                }
            })
            .collect();
        let lanes = Arc::new(lanes);
        all.insert((peer, protocol.name), lanes.clone());
        Ok(lanes)
    }
}

/// Why a stream could not be opened.
enum Opening {
    /// It may open next time (reset, refused, connection lost).
    Failed(String),
    /// The peer does not speak the protocol.
    Unsupported(String),
}

struct LaneTask {
    shared: Arc<Shared>,
    control: libp2p_stream::Control,
    peer: PeerId,
    protocol: &'static str,
    id: StreamProtocol,
    /// Messages written and not yet answered, at most.
    window: usize,
    /// Taken by the lane of this peer and protocol that opens a stream:
    /// two arriving together would find the receiver's one-stream accept
    /// queue full.
    opening: Arc<tokio::sync::Mutex<()>>,
}

impl LaneTask {
    async fn run(self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(job) = jobs.recv().await {
            if job.answer.is_closed() {
                continue;
            }
            let Some((stream, job)) = self.open(job).await else {
                continue;
            };
            self.carry(stream, job, &mut jobs).await;
        }
    }

    /// Opens a greeted stream for `job`, trying again after a pause as
    /// long as its sender waits.
    async fn open(&self, mut job: Job) -> Option<(libp2p::Stream, Job)> {
        let mut attempt = 0u32;
        loop {
            let opened = tokio::select! {
                () = job.answer.closed() => return None,
                opened = self.try_open() => opened,
            };
            let error = match opened {
                Ok(stream) => return Some((stream, job)),
                Err(Opening::Unsupported(reason)) => {
                    let _ = job.answer.send(Answer::Failed(reason));
                    return None;
                }
                Err(Opening::Failed(error)) => error,
            };
            attempt = attempt.saturating_add(1);
            tracing::debug!(peer = %self.peer, protocol = self.protocol, attempt, %error, "stream not opened; opening again");
            self.shared
                .metrics
                .stream_reopens
                .get_or_create(&ProtocolLabel {
                    protocol: self.protocol.to_string(),
                })
                .inc();
            #[expect(
                clippy::disallowed_methods,
                reason = "the runtime edge: jitter between a real network's stream opens"
            )]
            let pause = retry_pause(attempt.min(STREAM_RETRIES), &mut rand::thread_rng());
            tokio::select! {
                () = job.answer.closed() => return None,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn try_open(&self) -> Result<libp2p::Stream, Opening> {
        let _turn = self.opening.lock().await;
        self.shared.wait_verified(&self.peer).await;
        let mut control = self.control.clone();
        let mut stream = match control.open_stream(self.peer, self.id.clone()).await {
            Ok(stream) => stream,
            Err(libp2p_stream::OpenStreamError::Io(e)) => {
                return Err(Opening::Failed(e.to_string()))
            }
            Err(e) => return Err(Opening::Unsupported(format!("{e:?}"))),
        };
        let mut greeting = [0u8; 1];
        match tokio::time::timeout(GREETING_TIMEOUT, stream.read_exact(&mut greeting)).await {
            Ok(Ok(())) if greeting[0] == Status::Accepted as u8 => Ok(stream),
            Ok(Ok(())) => Err(Opening::Failed(format!("greeted with {}", greeting[0]))),
            Ok(Err(e)) => Err(Opening::Failed(format!("not greeted: {e}"))),
            Err(_) => Err(Opening::Failed("not greeted in time".to_string())),
        }
    }

    /// Writes `first` and then every message that comes while the stream
    /// lasts, and hands their answers over in order. Returns when the
    /// stream failed, was closed by the receiver, or the lane is dropped;
    /// messages unanswered then fail (their senders send them again).
    async fn carry(&self, stream: libp2p::Stream, first: Job, jobs: &mut mpsc::Receiver<Job>) {
        let (mut reader, mut writer) = stream.split();
        let (unanswered_tx, mut unanswered) =
            mpsc::channel::<(oneshot::Sender<Answer>, Pending)>(self.window);
        let write = async {
            let unanswered_tx = unanswered_tx;
            let mut next = Some(first);
            loop {
                let job = match next.take() {
                    Some(job) => job,
                    None => match jobs.recv().await {
                        Some(job) => job,
                        None => break,
                    },
                };
                if job.answer.is_closed() {
                    continue;
                }
                let Job {
                    bytes,
                    answer,
                    pending,
                } = job;
                // Awaited before the frame is written (waiting while the
                // window is full): a receiver that refuses a frame unread
                // answers while its write may still fail.
                if unanswered_tx.send((answer, pending)).await.is_err() {
                    return;
                }
                if codec::write_frame(&mut writer, &bytes).await.is_err() {
                    return;
                }
            }
            let _ = writer.close().await;
        };
        let read = async {
            let mut waiting: VecDeque<(oneshot::Sender<Answer>, Pending)> = VecDeque::new();
            let mut since = Instant::now();
            let mut writing = true;
            loop {
                let mut byte = [0u8; 1];
                tokio::select! {
                    biased;
                    // Read while idle too: a stream that ends between
                    // messages is noticed before one is written on it.
                    read = reader.read(&mut byte) => {
                        let Ok(1) = read else { return };
                        // Its message was handed over before it was
                        // written, though maybe not taken yet; an answer
                        // nobody waits for breaks the order.
                        let next = waiting.pop_front().or_else(|| unanswered.try_recv().ok());
                        let Some((answer, _pending)) = next else { return };
                        let _ = answer.send(Answer::Status(byte[0]));
                        since = Instant::now();
                    }
                    next = unanswered.recv(), if writing => match next {
                        Some(item) => {
                            if waiting.is_empty() {
                                since = Instant::now();
                            }
                            waiting.push_back(item);
                        }
                        None => writing = false,
                    },
                    () = tokio::time::sleep_until(since + ANSWER_TIMEOUT), if !waiting.is_empty() => return,
                }
                if !writing && waiting.is_empty() {
                    return;
                }
            }
        };
        tokio::pin!(write, read);
        tokio::select! {
            biased;
            () = &mut read => {}
            () = &mut write => {
                let _ = tokio::time::timeout(REFUSAL_GRACE, &mut read).await;
            }
        }
    }
}
