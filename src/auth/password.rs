//! Passwords: the policy of `[auth.password]`, and argon2id hashing on a fixed pool of threads
//! with a bounded queue, so a login flood neither stalls the async workers nor grows memory.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use zxcvbn::matching::patterns::MatchPattern;

use crate::config::PasswordPolicy;
use crate::schema::FieldError;

/// Hashing could not be done now.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// More hashes are waiting than the queue allows: answer fast instead of queueing.
    #[error("too many password operations in progress")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// A real argon2id hash, with the parameters Lucent hashes with, of a random password nobody
/// kept: verified against for unknown accounts so both kinds of failed login cost the same. A
/// constant rather than a hash made at startup, which would cost every start 20 ms and 19 MiB.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zrYJvi0ytXrq9jkpgO1S2A$n6eMQBq+t0WVgrUtOqo5C/nuaVsNrVtXL8z5VLfSfQo";

/// Hashes waiting per hashing thread before new ones are refused.
const QUEUE_PER_THREAD: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// The argon2id pool (argon2's defaults are OWASP's: m = 19 MiB, t = 2, p = 1): one thread per
/// core and a bounded queue. Fixed threads rather than tokio's blocking pool, whose many short-lived
/// threads each leave a 19 MiB argon2 buffer in their own malloc arena (measured: 270 MiB RSS
/// after a login flood; with fixed threads memory stays at a buffer per core).
#[derive(Debug, Clone)]
pub struct Passwords {
    queue: SyncSender<Job>,
    /// Requests hashing or waiting to; a permit lives as long as its request, so a client that
    /// went away frees its place at once. Beyond it, `Busy`.
    admitted: Arc<Semaphore>,
    /// How many places `admitted` has.
    places: usize,
}

impl Passwords {
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        let admitted = threads * (QUEUE_PER_THREAD + 1);
        // The channel never refuses what was admitted: abandoned jobs stay in it until skipped.
        let (queue, jobs) = sync_channel::<Job>(admitted * 4);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("lucent-argon2-{n}"))
                .spawn(move || work(&jobs))
                .expect("start a hashing thread");
        }
        Self {
            queue,
            admitted: Arc::new(Semaphore::new(admitted)),
            places: admitted,
        }
    }

    /// Places taken in the hashing queue (requests hashing or waiting to), and how many there
    /// are (for `GET /api/metrics`).
    pub fn queue_usage(&self) -> (usize, usize) {
        let free = self.admitted.available_permits();
        (self.places.saturating_sub(free), self.places)
    }

    /// A place in the hashing queue, taken before the work that needs it (login counts its
    /// attempt only once it has one, so a refused-as-busy login is not counted as a failure).
    ///
    /// # Errors
    /// `Busy` when every place is taken.
    pub fn admit(&self) -> Result<Admission, PasswordError> {
        self.admitted
            .clone()
            .try_acquire_owned()
            .map(|permit| Admission { _permit: permit })
            .map_err(|_| PasswordError::Busy)
    }

    async fn run<T: Send + 'static>(
        &self,
        admission: Admission,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _admission = admission;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The request may have gone (client disconnected) while this waited: skip the
            // 20 ms of hashing nobody will read, so abandoned work never fills the queue.
            if !reply.is_closed() {
                let _ = reply.send(work());
            }
        });
        match self.queue.try_send(job) {
            Ok(()) => answer
                .await
                .map_err(|e| PasswordError::Internal(e.to_string())),
            Err(TrySendError::Full(_)) => Err(PasswordError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(PasswordError::Internal(
                "the hashing threads stopped".into(),
            )),
        }
    }

    /// The argon2id PHC string of `password`.
    ///
    /// # Errors
    /// `Busy` when the queue is full.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(self.admit()?, move || hash_now(&password)).await?
    }

    /// Whether `password` matches `stored`; with `None` (unknown account) a dummy hash is verified
    /// so the answer takes as long, and is `false`.
    ///
    /// # Errors
    /// `Busy` when the queue is full.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.verify_admitted(self.admit()?, password, stored).await
    }

    /// [`Passwords::verify`] in a place already taken with [`Passwords::admit`].
    ///
    /// # Errors
    /// `Internal` when the hashing threads are gone.
    pub async fn verify_admitted(
        &self,
        admission: Admission,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let matches = self
            .run(admission, move || verify_now(&password, &stored))
            .await?;
        Ok(known && matches)
    }
}

/// A place in the hashing queue; given back when dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
}

/// A hashing thread: runs jobs until every `Passwords` handle is gone.
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Internal(e.to_string()))
}

fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Whether `stored` is a password hash Lucent can verify a password against: an argon2 PHC string
/// (`$argon2id$v=19$m=...$salt$hash`), as accounts hold them and exports carry them. A plain
/// password is not one.
pub fn is_hash(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        hash.hash.is_some() && argon2::Algorithm::new(hash.algorithm.as_str()).is_ok()
    })
}

/// Every rule of `policy` that `password` breaks, as details on the `password` field.
pub fn check_policy(policy: &PasswordPolicy, password: &str, field: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // Text is text everywhere (SPEC §7), and a login refuses NUL before it hashes anything.
    if password.contains('\0') {
        errors.push(crate::schema::nul_error(field));
    }
    let length = password.chars().count();
    if length < policy.min_length {
        errors.push(FieldError::new(
            field,
            "too_short",
            format!("{field} must be at least {} characters", policy.min_length),
        ));
    }
    if length > policy.max_length {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {} characters", policy.max_length),
        ));
    }
    type CharRule = (bool, fn(char) -> bool, &'static str, &'static str);
    let rules: [CharRule; 4] = [
        (
            policy.require_uppercase,
            char::is_uppercase,
            "missing_uppercase",
            "an uppercase letter",
        ),
        (
            policy.require_lowercase,
            char::is_lowercase,
            "missing_lowercase",
            "a lowercase letter",
        ),
        (
            policy.require_numbers,
            |c| c.is_numeric(),
            "missing_number",
            "a number",
        ),
        (
            policy.require_symbols,
            |c| !c.is_alphanumeric() && !c.is_whitespace(),
            "missing_symbol",
            "a symbol",
        ),
    ];
    for (required, test, code, what) in rules {
        if required && !password.chars().any(test) {
            errors.push(FieldError::new(
                field,
                code,
                format!("{field} must contain {what}"),
            ));
        }
    }
    if policy.reject_common && is_common(password) {
        errors.push(FieldError::new(
            field,
            "common_password",
            format!("{field} is too common; choose another"),
        ));
    }
    errors
}

/// Whether the whole password is an entry of zxcvbn's ranked list of 30,000 common passwords
/// (compared case-insensitively, as zxcvbn does).
pub fn is_common(password: &str) -> bool {
    // Entries are short; longer inputs cannot match, and zxcvbn's cost grows with length.
    if password.is_empty() || password.chars().count() > 64 {
        return false;
    }
    let entropy = zxcvbn::zxcvbn(password, &[]);
    let sequence = entropy.sequence();
    sequence.len() == 1
        && matches!(
            &sequence[0].pattern,
            MatchPattern::Dictionary(d)
                if format!("{:?}", d.dictionary_name) == "Passwords" && !d.reversed && !d.l33t
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 12,
            max_length: 256,
            reject_common: true,
            require_uppercase: false,
            require_lowercase: false,
            require_numbers: false,
            require_symbols: false,
        }
    }

    fn codes(policy: &PasswordPolicy, password: &str) -> Vec<&'static str> {
        check_policy(policy, password, "password")
            .into_iter()
            .map(|e| e.code)
            .collect()
    }

    #[test]
    fn policy_table() {
        let strict = PasswordPolicy {
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_symbols: true,
            ..policy()
        };
        let default = policy();
        let long = "x".repeat(257);
        let cases: Vec<(&PasswordPolicy, &str, Vec<&str>)> = vec![
            (&default, "correct horse battery staple", vec![]),
            (&default, "short", vec!["too_short"]),
            (&default, &long, vec!["too_long"]),
            (&default, "password1234", vec!["common_password"]),
            (&default, "PASSWORD1234", vec!["common_password"]),
            (&default, "qwertyuiop123", vec!["common_password"]),
            (
                &strict,
                "alllowercaseletters",
                vec!["missing_uppercase", "missing_number", "missing_symbol"],
            ),
            (&strict, "Ab1!", vec!["too_short"]),
            (&strict, "Ab1!efghijklm", vec![]),
        ];
        for (policy, password, expected) in cases {
            assert_eq!(codes(policy, password), expected, "{password}");
        }
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let passwords = Passwords::new();
        let hash = passwords
            .hash("correct horse battery staple".into())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify("correct horse battery staple".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(
            !passwords.verify("anything".into(), None).await.unwrap(),
            "unknown accounts never verify"
        );
        // The dummy costs what a real verification costs: same algorithm and parameters.
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(
            params(DUMMY_HASH),
            params(&passwords.hash("x".into()).await.unwrap())
        );
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn hashes_are_told_from_passwords() {
        assert!(is_hash(DUMMY_HASH));
        for not_a_hash in [
            "",
            "correct horse battery staple",
            "$argon2id$v=19$m=19456,t=2,p=1$zrYJvi0ytXrq9jkpgO1S2A",
            "$bcrypt$v=19$m=19456,t=2,p=1$zrYJvi0ytXrq9jkpgO1S2A$n6eMQBq+t0WVgrUtOqo5C/nuaVsNrVtXL8z5VLfSfQo",
        ] {
            assert!(!is_hash(not_a_hash), "{not_a_hash}");
        }
    }
}
