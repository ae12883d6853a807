//! Group commit for SQLite: record writes queue for the one writer connection, and whatever has
//! queued while the previous commit ran is written in one transaction, each statement under its
//! own savepoint so a failing one (a unique violation) fails alone. A job may be several statements
//! (a document and its relation lists, a deleted account and its sessions): they share one
//! savepoint, so they are written all together or not at all. A commit appends every page a
//! write touched to the WAL; one commit for many writes is what lets creates outrun a
//! commit-per-write server. Answers are sent only after the commit, so an acknowledged write is
//! durable like any other.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 128;

struct Job {
    statements: Vec<Statement>,
    /// Written only if the first statement affects a row (`Writes::execute_if_found`).
    if_found: bool,
    reply: oneshot::Sender<Result<Option<Vec<u64>>, DbErr>>,
}

/// The queue in front of the writer connection.
#[derive(Clone, Debug)]
pub struct WriteQueue {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl WriteQueue {
    /// Starts the task that owns the batching for `writer`.
    pub fn start(writer: DatabaseConnection) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, queue));
        Self { jobs }
    }

    /// Executes statements all together or not at all; returns the rows each affected once
    /// their transaction committed (`None`: `if_found` and the first statement affected no row,
    /// so nothing was written).
    ///
    /// # Errors
    /// The first failing statement's error (then none of them is written), or the commit's.
    pub async fn execute(
        &self,
        statements: Vec<Statement>,
        if_found: bool,
    ) -> Result<Option<Vec<u64>>, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                statements,
                if_found,
                reply,
            })
            .map_err(|_| DbErr::Custom("the write queue has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the write queue dropped a write".into()))?
    }
}

async fn run(writer: DatabaseConnection, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if jobs.len() == 1 && jobs[0].statements.len() == 1 {
            let mut job = jobs.pop().expect("one job");
            let statement = job.statements.pop().expect("one statement");
            let if_found = job.if_found;
            let result = writer.execute_raw(statement).await.map(|r| {
                let affected = r.rows_affected();
                (!if_found || affected > 0).then(|| vec![affected])
            });
            let _ = job.reply.send(result);
            continue;
        }
        let (statements, replies): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|j| ((j.statements, j.if_found), j.reply))
            .unzip();
        match write_batch(&writer, statements).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// One transaction; each job's own outcome, or the transaction's failure.
async fn write_batch(
    writer: &DatabaseConnection,
    jobs: Vec<(Vec<Statement>, bool)>,
) -> Result<Vec<Result<Option<Vec<u64>>, DbErr>>, DbErr> {
    let transaction = writer.begin().await?;
    let mut results = Vec::with_capacity(jobs.len());
    for (statements, if_found) in jobs {
        results.push(super::unit::all_or_nothing(&transaction, statements, if_found).await?);
    }
    transaction.commit().await?;
    Ok(results)
}
