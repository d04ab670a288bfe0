//! Fixed sets of named threads that take jobs from one shared queue: blocking work (password hashing, store
//! reads) kept off the async threads, bounded in threads however large the burst. The queue is a channel
//! ([`start`]), or bounded [`Lanes`] served in order of priority ([`start_on`]).

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, unbounded};
use parking_lot::{Condvar, Mutex};

/// The queue the threads of one set take their jobs from (a channel with many receivers: each job goes to one).
pub struct JobQueue<J>(Receiver<J>);

impl<J> JobQueue<J> {
    /// The next job, waiting for one; `None` once every sender is gone.
    pub fn next(&self) -> Option<J> {
        self.0.recv().ok()
    }
}

/// Starts `count` threads named `{name}-0`, `{name}-1`, …, each running `work` on the shared queue, and returns
/// the queue's sending end.
pub fn start<J, W>(name: &str, count: usize, work: W) -> std::io::Result<Sender<J>>
where
    J: Send + 'static,
    W: Fn(&JobQueue<J>) + Clone + Send + 'static,
{
    let (jobs, queue) = unbounded::<J>();
    start_on(name, count, Arc::new(JobQueue(queue)), work)?;
    Ok(jobs)
}

/// Starts `count` threads named `{name}-0`, `{name}-1`, …, each running `work` on `queue`.
pub fn start_on<Q, W>(name: &str, count: usize, queue: Arc<Q>, work: W) -> std::io::Result<()>
where
    Q: Send + Sync + 'static,
    W: Fn(&Q) + Clone + Send + 'static,
{
    for i in 0..count {
        let queue = queue.clone();
        let work = work.clone();
        std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || work(&queue))?;
    }
    Ok(())
}

/// A queue of jobs in `N` lanes, each holding at most its capacity: a full lane refuses the job, so a burst
/// is answered "busy" instead of growing the queue. Threads take from the first lane that has a job, so a
/// job waits as long as any job of an earlier lane does.
pub struct Lanes<J, const N: usize> {
    state: Mutex<LaneState<J, N>>,
    ready: Condvar,
}

struct LaneState<J, const N: usize> {
    lanes: [VecDeque<J>; N],
    capacity: [usize; N],
    closed: bool,
}

impl<J, const N: usize> Lanes<J, N> {
    pub fn new(capacity: [usize; N]) -> Lanes<J, N> {
        Lanes {
            state: Mutex::new(LaneState { lanes: std::array::from_fn(|_| VecDeque::new()), capacity, closed: false }),
            ready: Condvar::new(),
        }
    }

    /// Queues `job` in `lane`; gives it back when the lane is full or the queue closed.
    pub fn push(&self, lane: usize, job: J) -> Result<(), J> {
        let mut state = self.state.lock();
        let LaneState { lanes, capacity, closed } = &mut *state;
        match (lanes.get_mut(lane), capacity.get(lane)) {
            (Some(queue), Some(&capacity)) if !*closed && queue.len() < capacity => {
                queue.push_back(job);
                drop(state);
                self.ready.notify_one();
                Ok(())
            }
            _ => Err(job),
        }
    }

    /// The next job, earlier lanes first, waiting for one; `None` once the queue is closed.
    pub fn next(&self) -> Option<J> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.lanes.iter_mut().find_map(VecDeque::pop_front) {
                return Some(job);
            }
            self.ready.wait(&mut state);
        }
    }

    /// Ends the threads: each returns from [`Lanes::next`] once it has finished its job. Queued jobs are dropped.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.lanes.iter_mut().for_each(VecDeque::clear);
        drop(state);
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    #[test]
    fn every_job_runs_on_one_of_the_named_threads() {
        let (done, results) = channel::<String>();
        let jobs = start("palomar-test", 2, move |queue: &JobQueue<u32>| {
            while let Some(job) = queue.next() {
                let thread = std::thread::current().name().unwrap_or_default().to_owned();
                let _ = done.send(format!("{job} on {thread}"));
            }
        })
        .expect("starts");
        for job in 0..10 {
            jobs.send(job).expect("the threads are running");
        }
        drop(jobs);
        let mut seen: Vec<String> = results.iter().collect();
        seen.sort();
        assert_eq!(seen.len(), 10, "each job once, and the threads stop when the queue is dropped: {seen:?}");
        assert!(seen.iter().all(|r| r.ends_with("on palomar-test-0") || r.ends_with("on palomar-test-1")), "{seen:?}");
    }

    #[test]
    fn lanes_are_bounded_and_served_earlier_lane_first() {
        let lanes = Lanes::new([2, 1]);
        assert_eq!(lanes.push(1, "register a"), Ok(()));
        assert_eq!(lanes.push(1, "register b"), Err("register b"), "a full lane refuses");
        assert_eq!(lanes.push(0, "verify a"), Ok(()));
        assert_eq!(lanes.push(0, "verify b"), Ok(()));
        assert_eq!(lanes.push(0, "verify c"), Err("verify c"));
        assert_eq!(lanes.push(2, "no such lane"), Err("no such lane"));
        let order: Vec<_> = (0..3).filter_map(|_| lanes.next()).collect();
        assert_eq!(order, ["verify a", "verify b", "register a"]);
        assert_eq!(lanes.push(1, "register b"), Ok(()), "room again once taken");
        lanes.close();
        assert_eq!(lanes.next(), None, "closing drops what waits and ends the threads");
        assert_eq!(lanes.push(0, "late"), Err("late"));
    }

    #[test]
    fn threads_on_lanes_stop_when_they_are_closed() {
        let lanes = Arc::new(Lanes::<u32, 1>::new([16]));
        let (done, results) = channel::<u32>();
        start_on("palomar-test-lanes", 2, lanes.clone(), move |lanes: &Lanes<u32, 1>| {
            while let Some(job) = lanes.next() {
                let _ = done.send(job);
            }
        })
        .expect("starts");
        for job in 0..5 {
            lanes.push(0, job).expect("room");
        }
        let mut seen: Vec<u32> =
            (0..5).filter_map(|_| results.recv_timeout(std::time::Duration::from_secs(60)).ok()).collect();
        seen.sort();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        lanes.close();
        // Both threads return, dropping their senders: the channel then reports the end.
        let end = results.recv_timeout(std::time::Duration::from_secs(60));
        assert_eq!(end, Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
    }
}
