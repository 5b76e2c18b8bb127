//! The fastupload function (秒传, instant upload): `POST /v1/fast-upload` and
//! `POST /v1/fast-upload/{challenge_id}/proof`.
//!
//! Knowing a hash proves nothing, so a client must show it holds the bytes: it gets a
//! challenge (a random nonce and random byte ranges) and answers
//! `sha256(nonce || file[range0] || file[range1] ...)`. The server computes the same from the
//! verified copy in the cold store with ranged GETs. A challenge is always issued, whether or
//! not the content exists; it is single-use (taken by a conditional delete), expires, and
//! lives in the caller's partition. Every failure (wrong proof, unknown or unverified content,
//! expired, reused or someone else's challenge, a cold store that cannot be read) is the same
//! `200 {"status":"upload_required"}`.
//!
//! What an attacker can learn from it is bounded three ways:
//! - **Time.** A proof for content that is not stored, or that the caller may not have, reads
//!   the same number of ranges of the same sizes from the cold store's decoy
//!   ([`filestore_shared::keys::PROOF_DECOY_KEY`]), hashes them and compares in constant
//!   time, so it costs what a real proof costs.
//! - **Rate.** At most [`CHALLENGES_PER_HOUR`] challenges per user per hour, counted by one
//!   conditional update before the challenge is issued; then `429 too_many_attempts` with
//!   `Retry-After`, and clients upload normally.
//! - **Small content.** Content under [`UNSHARED_BELOW`] is cheap to guess and cheap to send,
//!   so it is only ever given to a user who holds it already; for anyone else the proof is
//!   checked against the decoy and answers `upload_required`.

use std::convert::Infallible;
use std::time::Duration;

use filestore_contract::api::{
    ByteRange, ChallengeResponse, FastUploadRequest, ProofRequest, ProofResponse,
};
use filestore_contract::domain::{ChallengeId, ContentType, FileId, OnConflict};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{json, json_body, respond, serve};
use filestore_shared::keys::{PROOF_DECOY_KEY, object_key};
use filestore_shared::repo::{
    AddFile, ChallengeRecord, ContentRecord, Copies, Counter, FileRecord, Limit, Taken,
    UNSHARED_BELOW, UserRecord, rfc3339,
};
use filestore_shared::storage::{DECOY_SIZE, Storage};
use filestore_shared::{ApiError, AppState, metrics};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tracing::instrument;

/// How long a challenge can be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Below this size the single range is the whole file.
pub const SMALL_FILE: u64 = 64 * 1024;
/// Ranges asked of larger files.
pub const RANGE_COUNT: usize = 3;
/// Length of each range of a larger file.
pub const RANGE_LENGTH: u64 = 8 * 1024;
/// Challenges issued to one user per hour at most.
pub const CHALLENGES_PER_HOUR: u64 = 120;

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::FastUpload, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    let user = route.caller()?;
    match route.key() {
        RouteKey::FastUpload => challenge(state, user, json_body(req)?).await,
        RouteKey::FastUploadProof => {
            let id = route.id_of("challenge")?;
            prove(state, user, &id, json_body(req)?).await
        }
        _ => Err(ApiError::NotFound("route")),
    }
}

/// The ranges to ask of a file of `size` bytes: the whole of a small file, else
/// [`RANGE_COUNT`] random ranges of [`RANGE_LENGTH`] bytes, in file order.
pub fn choose_ranges(size: u64, rng: &mut impl Rng) -> Vec<ByteRange> {
    if size < SMALL_FILE {
        return vec![ByteRange {
            offset: 0,
            length: size,
        }];
    }
    let mut ranges: Vec<ByteRange> = (0..RANGE_COUNT)
        .map(|_| ByteRange {
            offset: rng.gen_range(0..=size - RANGE_LENGTH),
            length: RANGE_LENGTH,
        })
        .collect();
    ranges.sort_by_key(|r| r.offset);
    ranges
}

/// The answer to a challenge: lowercase hex SHA-256 of the nonce's bytes and the ranges.
///
/// # Errors
/// A nonce that is not hex.
pub fn proof_of(nonce_hex: &str, ranges: &[&[u8]]) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(hex::decode(nonce_hex)?);
    for range in ranges {
        hasher.update(range);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Equal strings, compared in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Where in the decoy a challenged range is read: the same length, at an offset that fits
/// (ranges of small files start at 0 and are shorter than the decoy).
pub fn decoy_range(range: &ByteRange) -> ByteRange {
    let span = DECOY_SIZE.saturating_sub(range.length) + 1;
    ByteRange {
        offset: range.offset % span,
        length: range.length.min(DECOY_SIZE),
    }
}

fn upload_required() -> Result<Response<Body>, ApiError> {
    json(StatusCode::OK, &ProofResponse::UploadRequired)
}

/// Counts an instant upload refused for `reason`: the client is told only
/// `upload_required` (or 429), the operator why.
fn refused(reason: &str) {
    metrics::add_by(metrics::INSTANT_UPLOAD_REFUSALS, ("reason", reason), 1.0);
}

#[instrument(skip(state, user, input), fields(user_id = %user.user_id, challenge_id))]
async fn challenge(
    state: &AppState,
    user: &UserRecord,
    input: FastUploadRequest,
) -> Result<Response<Body>, ApiError> {
    let user_id = &user.user_id;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let limit = Limit {
        max: CHALLENGES_PER_HOUR,
        window: Duration::from_secs(3600),
    };
    let counter = Counter::challenges(user_id);
    if let Taken::Refused { retry_after } = state.repo.take(&counter, limit, now).await? {
        tracing::info!("challenge limit reached");
        refused("throttled");
        return Err(ApiError::Throttled { retry_after });
    }
    // Judged on the declared size alone, so it says nothing about whether the content exists.
    state.check_quota(user, input.size.get())?;
    let parent_id = input.parent_id.unwrap_or_default();
    let on_conflict = input.on_conflict.unwrap_or_default();
    state
        .check_target(user_id, &parent_id, input.name.as_str(), on_conflict)
        .await?;
    let (nonce, ranges) = {
        let mut rng = rand::thread_rng();
        let nonce: [u8; 16] = rng.r#gen();
        (
            hex::encode(nonce),
            choose_ranges(input.size.get(), &mut rng),
        )
    };
    let record = ChallengeRecord {
        user_id: user_id.clone(),
        challenge_id: ChallengeId::generate(),
        name: input.name.to_string(),
        parent_id,
        on_conflict,
        size: input.size.get(),
        sha256: input.sha256.to_string(),
        content_type: ContentType::octet_stream().to_string(),
        nonce,
        ranges,
        expires_at: OffsetDateTime::now_utc() + CHALLENGE_TTL,
    };
    tracing::Span::current().record("challenge_id", record.challenge_id.as_str());
    state.repo.put_challenge(&record).await?;
    json(
        StatusCode::OK,
        &ChallengeResponse {
            challenge_id: record.challenge_id,
            nonce: record.nonce,
            ranges: record.ranges,
            expires_at: rfc3339(record.expires_at),
        },
    )
}

/// Reads the challenged ranges of an object. `None` if it is missing or shorter.
///
/// # Errors
/// S3 failures.
async fn read_ranges(
    store: &Storage,
    key: &str,
    ranges: &[ByteRange],
) -> anyhow::Result<Option<Vec<Vec<u8>>>> {
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        if r.length == 0 {
            out.push(Vec::new());
            continue;
        }
        let Some(bytes) = store.read_range(key, r.offset, r.length).await? else {
            return Ok(None);
        };
        if bytes.len() as u64 != r.length {
            return Ok(None);
        }
        out.push(bytes.to_vec());
    }
    Ok(Some(out))
}

/// The proof `challenge` expects of `content`'s bytes, or, with no content, of the decoy's:
/// the same reads and the same hashing either way. `None` when the bytes cannot be read (a
/// missing object, or the cold store down): the proof then fails like any other.
async fn expected_proof(
    cold: &Storage,
    content: Option<&ContentRecord>,
    challenge: &ChallengeRecord,
) -> Option<String> {
    let (key, ranges) = match content {
        Some(content) => (content.cold_key.as_str(), challenge.ranges.clone()),
        None => (
            PROOF_DECOY_KEY,
            challenge.ranges.iter().map(decoy_range).collect(),
        ),
    };
    let read = match read_ranges(cold, key, &ranges).await {
        Ok(Some(read)) => read,
        Ok(None) => {
            tracing::warn!(key, "no readable bytes to check a proof against");
            return None;
        }
        Err(e) => {
            tracing::warn!(
                key,
                error = format!("{e:#}"),
                "cold store unreadable; the proof fails"
            );
            return None;
        }
    };
    let slices: Vec<&[u8]> = read.iter().map(Vec::as_slice).collect();
    proof_of(&challenge.nonce, &slices).ok()
}

#[instrument(skip(state, user, input), fields(user_id = %user.user_id))]
async fn prove(
    state: &AppState,
    user: &UserRecord,
    challenge_id: &ChallengeId,
    input: ProofRequest,
) -> Result<Response<Body>, ApiError> {
    let user_id = &user.user_id;
    // Whether a challenge exists, and when it expires, the caller knows already.
    let Some(challenge) = state.repo.take_challenge(user_id, challenge_id).await? else {
        refused("no_challenge");
        return upload_required();
    };
    if challenge.expires_at <= OffsetDateTime::now_utc() {
        refused("expired");
        return upload_required();
    }
    // From here on, every path does the same work whether or not the content exists.
    let small = challenge.size < UNSHARED_BELOW;
    let (content, held) = tokio::try_join!(state.repo.get_content(&challenge.sha256), async {
        if small {
            state.repo.holds_content(user_id, &challenge.sha256).await
        } else {
            Ok(true)
        }
    })?;
    let content = content.filter(|c| c.size == challenge.size && held);
    let Some(cold) = state.cold.as_ref() else {
        refused("no_cold_store");
        return upload_required();
    };
    let expected = expected_proof(cold, content.as_ref(), &challenge).await;
    let (found, readable) = (content.is_some(), expected.is_some());
    let proven = expected.is_some_and(|e| same(&e, input.proof.as_str()));
    let Some(content) = content.filter(|_| proven) else {
        tracing::info!("proof not accepted");
        // Said after the work, which is the same on every path.
        refused(match (found, readable) {
            (false, _) => "no_content",
            (true, false) => "unreadable",
            (true, true) => "wrong_proof",
        });
        return upload_required();
    };
    let file_id = FileId::generate();
    let mut file = FileRecord {
        user_id: user_id.clone(),
        file_id: file_id.clone(),
        name: challenge.name,
        parent_id: challenge.parent_id,
        size: content.size,
        sha256: Some(content.sha256.clone()),
        declared_sha256: None,
        content_type: challenge.content_type,
        created_at: OffsetDateTime::now_utc(),
        object_key: object_key(user_id, &file_id),
        upload_id: None,
        copies: Copies::Verified {
            sha1: content.sha1.clone(),
            cold_key: content.cold_key.clone(),
            hot_kept: false,
        },
        trashed_at: None,
    };
    // A correct proof has shown the content exists, so answering 413 here reveals nothing.
    let quota = state.quota_of(user);
    let mut outcome = state
        .repo
        .create_shared_file(&mut file, challenge.on_conflict, quota)
        .await?;
    // `replace`: the file holding the name goes to the trash, and the new one takes it.
    if outcome == AddFile::NameTaken
        && challenge.on_conflict == OnConflict::Replace
        && state
            .replace_file(user_id, &file.parent_id, &file.name)
            .await?
    {
        outcome = state
            .repo
            .create_shared_file(&mut file, challenge.on_conflict, quota)
            .await?;
    }
    match outcome {
        AddFile::Added => {}
        AddFile::OverQuota => {
            return Err(ApiError::quota_exceeded(
                user.claimed_bytes,
                file.size,
                quota,
            ));
        }
        // Like quota, these say nothing a correct proof has not shown already.
        AddFile::NameTaken => return Err(ApiError::name_taken(&file.name)),
        AddFile::ParentGone => return Err(ApiError::parent_gone()),
        AddFile::Refused => {
            refused("content_gone");
            return upload_required();
        }
    }
    tracing::info!(file_id = %file.file_id, sha256 = %content.sha256, "instant upload");
    metrics::add(metrics::INSTANT_UPLOAD_HITS, 1.0);
    json(
        StatusCode::CREATED,
        &ProofResponse::Complete { file: file.view() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn small_files_are_asked_whole_and_large_ones_in_ranges() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(
            choose_ranges(0, &mut rng),
            [ByteRange {
                offset: 0,
                length: 0
            }]
        );
        assert_eq!(
            choose_ranges(SMALL_FILE - 1, &mut rng),
            [ByteRange {
                offset: 0,
                length: SMALL_FILE - 1
            }]
        );
        for size in [SMALL_FILE, SMALL_FILE + 1, 10 * 1024 * 1024 * 1024] {
            let ranges = choose_ranges(size, &mut rng);
            assert_eq!(ranges.len(), RANGE_COUNT);
            assert!(ranges.windows(2).all(|w| w[0].offset <= w[1].offset));
            assert!(
                ranges
                    .iter()
                    .all(|r| r.length == RANGE_LENGTH && r.offset + r.length <= size)
            );
        }
    }

    #[test]
    fn the_proof_covers_nonce_and_ranges_in_order() {
        let a = proof_of("00ff", &[b"ab", b"cd"]).unwrap();
        assert_eq!(
            a,
            hex::encode(Sha256::digest([0x00, 0xff, b'a', b'b', b'c', b'd']))
        );
        assert_ne!(a, proof_of("00ff", &[b"cd", b"ab"]).unwrap());
        assert_ne!(a, proof_of("00fe", &[b"ab", b"cd"]).unwrap());
        assert!(proof_of("zz", &[]).is_err());
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &a[1..]));
    }

    /// A proof with no content reads the decoy as often and as much as it would read the
    /// content: every range keeps its length and lands inside the decoy.
    #[test]
    fn decoy_ranges_keep_their_lengths_and_fit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for size in [0, 1, SMALL_FILE - 1, SMALL_FILE, 3 << 20, 5 << 40] {
            for r in choose_ranges(size, &mut rng) {
                let d = decoy_range(&r);
                assert_eq!(d.length, r.length);
                assert!(d.offset + d.length <= DECOY_SIZE, "{r:?} -> {d:?}");
            }
        }
    }
}
