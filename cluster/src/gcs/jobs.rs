//! The job table: one record per driver session, with ids from a persisted counter.

use actix::prelude::*;
use raya_common::{JobId, NodeId};
use serde::{Deserialize, Serialize};

use super::persist::Persisted;
use super::{GcsError, GcsEvent, gcs_requests};
use raya_common::time::now_ms;

/// Whether a job's driver is still running.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// The driver is connected.
    Running,
    /// The driver shut down (or its node died).
    Finished,
}

/// A job's record.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job.
    pub job_id: JobId,
    /// The node its driver runs on.
    pub driver_node: NodeId,
    /// The job's default namespace.
    pub namespace: String,
    /// Running or finished.
    pub state: JobState,
    /// Start time (ms since the epoch).
    pub start_time_ms: u64,
    /// End time.
    pub end_time_ms: Option<u64>,
}

/// Starts a job and returns its record with a fresh id.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<JobInfo, GcsError>")]
pub struct AddJob {
    /// The driver's node.
    pub driver_node: NodeId,
    /// The job's namespace.
    pub namespace: String,
}

/// Marks a job finished: only its driver's node does (others are refused).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct FinishJob {
    /// The job.
    pub job: JobId,
    /// Its driver's node, which sends this.
    pub node: NodeId,
}

/// Every job record.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<JobInfo>, GcsError>")]
pub struct GetAllJobs;

gcs_requests! {
    JobTable, jobs:
    AddJob => JobInfo as "gcs/AddJob", access = Join,
        where |m, from| {
            from.is(m.driver_node, "a job")?;
            super::nodes::check_text(&m.namespace, "a namespace", MAX_NAMESPACE)
        };
    FinishJob => () as "gcs/FinishJob",
        where |m, from| from.is(m.node, "a job's end");
    GetAllJobs => Vec<JobInfo> as "gcs/GetAllJobs", access = Read;
}

/// Bytes of a job's namespace, at most.
pub const MAX_NAMESPACE: usize = 1024;
/// Jobs one node drives at once, at most.
pub const MAX_RUNNING_JOBS_A_NODE: usize = 1024;
/// Records of finished jobs the table keeps, at most (the oldest are let go).
pub const MAX_FINISHED_JOBS: usize = 1_000;

/// The job table actor.
pub struct JobTable {
    jobs: Persisted<JobId, JobInfo>,
    counter: Persisted<String, u32>,
}

impl JobTable {
    pub(crate) fn load(db: &sled::Db) -> Result<Self, GcsError> {
        Ok(JobTable {
            jobs: Persisted::open(db, "jobs")?,
            counter: Persisted::open(db, "job_counter")?,
        })
    }

    fn finish(&mut self, job: JobId, node: NodeId) -> Result<(), GcsError> {
        let Some(mut info) = self.jobs.get(&job).cloned() else {
            return Err(GcsError::NotFound(format!("job {job}")));
        };
        if info.driver_node != node {
            return Err(GcsError::Invalid(format!(
                "job {job} is driven from node {}, not {node}",
                info.driver_node
            )));
        }
        if info.state == JobState::Running {
            info.state = JobState::Finished;
            info.end_time_ms = Some(now_ms());
            self.jobs.insert(job, info)?;
        }
        Ok(())
    }
}

impl Actor for JobTable {
    type Context = Context<Self>;
}

impl Handler<AddJob> for JobTable {
    type Result = Result<JobInfo, GcsError>;
    fn handle(&mut self, m: AddJob, _: &mut Context<Self>) -> Self::Result {
        let running = self
            .jobs
            .values()
            .filter(|j| j.driver_node == m.driver_node && j.state == JobState::Running)
            .count();
        if running >= MAX_RUNNING_JOBS_A_NODE {
            return Err(GcsError::Invalid(format!(
                "node {} runs {running} jobs already, the most one node may",
                m.driver_node
            )));
        }
        let next = self.counter.get(&"next".to_string()).copied().unwrap_or(1);
        let following = next
            .checked_add(1)
            .ok_or_else(|| GcsError::Invalid("job ids exhausted".into()))?;
        self.counter.insert("next".into(), following)?;
        let info = JobInfo {
            job_id: JobId(next),
            driver_node: m.driver_node,
            namespace: m.namespace,
            state: JobState::Running,
            start_time_ms: now_ms(),
            end_time_ms: None,
        };
        self.jobs.insert(info.job_id, info.clone())?;
        self.forget_oldest_finished()?;
        Ok(info)
    }
}

impl JobTable {
    /// Lets go the records of the jobs that finished first, past [`MAX_FINISHED_JOBS`].
    fn forget_oldest_finished(&mut self) -> Result<(), GcsError> {
        let finished: Vec<JobId> = self
            .jobs
            .values()
            .filter(|j| j.state != JobState::Running)
            .map(|j| j.job_id)
            .collect();
        if finished.len() <= MAX_FINISHED_JOBS {
            return Ok(());
        }
        // Job ids grow with time: the smallest finished first (or at least started first).
        let excess = finished.len() - MAX_FINISHED_JOBS;
        let mut oldest = finished;
        oldest.sort_unstable();
        for job in oldest.into_iter().take(excess) {
            self.jobs.remove(&job)?;
        }
        Ok(())
    }
}

impl Handler<FinishJob> for JobTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, m: FinishJob, _: &mut Context<Self>) -> Self::Result {
        self.finish(m.job, m.node)
    }
}

impl Handler<GetAllJobs> for JobTable {
    type Result = Result<Vec<JobInfo>, GcsError>;
    fn handle(&mut self, _: GetAllJobs, _: &mut Context<Self>) -> Self::Result {
        Ok(self.jobs.values().cloned().collect())
    }
}

impl Handler<GcsEvent> for JobTable {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, _: &mut Context<Self>) {
        if let GcsEvent::NodeDead { node, .. } = ev {
            let running: Vec<JobId> = self
                .jobs
                .values()
                .filter(|j| j.driver_node == node && j.state == JobState::Running)
                .map(|j| j.job_id)
                .collect();
            for job in running {
                if let Err(e) = self.finish(job, node) {
                    tracing::warn!(%job, error = %e, "could not finish the job of a dead node");
                }
            }
        }
    }
}

impl std::fmt::Debug for JobTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTable").finish_non_exhaustive()
    }
}
