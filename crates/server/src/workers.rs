//! Fixed sets of named threads that take jobs from one shared queue: blocking work (password hashing, store
//! reads) kept off the async threads, bounded in threads however large the burst.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// The queue the threads of one set take their jobs from.
pub struct JobQueue<J>(Arc<Mutex<Receiver<J>>>);

impl<J> JobQueue<J> {
    /// The next job, waiting for one; `None` once every sender is gone.
    pub fn next(&self) -> Option<J> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).recv().ok()
    }
}

/// Starts `count` threads named `{name}-0`, `{name}-1`, …, each running `work` on the shared queue, and returns
/// the queue's sending end.
pub fn start<J, W>(name: &str, count: usize, work: W) -> std::io::Result<Sender<J>>
where
    J: Send + 'static,
    W: Fn(&JobQueue<J>) + Clone + Send + 'static,
{
    let (jobs, queue) = channel::<J>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..count {
        let queue = JobQueue(queue.clone());
        let work = work.clone();
        std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || work(&queue))?;
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
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
}
