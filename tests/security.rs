//! Security: every route with another user's ids, bad input on every route, forged tokens.
