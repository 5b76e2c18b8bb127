//! Password guessing limits, for login and for a password change's `old_password` alike.
//!
//! Every password check first takes a place in two counters of the username (existing or
//! not): one for the caller's source address ([`PER_ADDRESS`]) and one over all addresses
//! ([`PER_USERNAME`]). Each is one conditional write made *before* argon2 runs, so any number
//! of concurrent guesses gets at most [`PER_ADDRESS`]`.max` answers other than 429 from one
//! address; a right password gives its places back. Counting per address means a guesser
//! elsewhere cannot lock the owner out; the count over all addresses caps a guesser with
//! many addresses, at the price of locking everyone out of that name until its window ends.

use std::time::Duration;

use filestore_shared::repo::{Counter, Limit, Taken};
use filestore_shared::{ApiError, AppState, metrics};

/// Failed password checks of one username from one source address.
pub const PER_ADDRESS: Limit = Limit {
    max: 5,
    window: Duration::from_secs(15 * 60),
};

/// Failed password checks of one username over every source address.
pub const PER_USERNAME: Limit = Limit {
    max: 100,
    window: Duration::from_secs(60 * 60),
};

/// The places one password check holds, counted as a failure unless given back.
#[must_use = "a right password gives its places back through `succeeded`"]
pub struct Attempt {
    taken: Vec<(Counter, i64)>,
}

impl Attempt {
    /// Takes the places of one password check of `canonical_name` from `address`.
    ///
    /// # Errors
    /// 429 with `Retry-After` when either counter is full (nothing is held then); a
    /// repository failure.
    pub async fn begin(
        state: &AppState,
        canonical_name: &str,
        address: &str,
    ) -> Result<Self, ApiError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut attempt = Self { taken: Vec::new() };
        // Over all addresses first: an address past its own limit then gives that place
        // back, so refused guesses never eat into what the owner's own address may try.
        for (counter, limit) in [
            (Counter::login_failures(canonical_name), PER_USERNAME),
            (
                Counter::login_failures_from(canonical_name, address),
                PER_ADDRESS,
            ),
        ] {
            match state.repo.take(&counter, limit, now).await? {
                Taken::Counted { window_start } => attempt.taken.push((counter, window_start)),
                Taken::Refused { retry_after } => {
                    tracing::warn!(address, limit = limit.max, "password checks throttled");
                    metrics::add(metrics::LOGINS_THROTTLED, 1.0);
                    attempt.give_back(state).await;
                    return Err(ApiError::Throttled { retry_after });
                }
            }
        }
        Ok(attempt)
    }

    /// The password was right: it was no failure, so its places go back.
    pub async fn succeeded(self, state: &AppState) {
        self.give_back(state).await;
    }

    /// Best effort: a place not given back counts one failure too many, which is the safe
    /// side, so a failure here is logged rather than failing a right password.
    async fn give_back(&self, state: &AppState) {
        for (counter, window_start) in &self.taken {
            if let Err(e) = state.repo.give_back(counter, *window_start).await {
                tracing::warn!(error = format!("{e:#}"), "giving a place back failed");
            }
        }
    }
}
