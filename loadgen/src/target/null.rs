//! The `null` target: every operation succeeds at once. Running against it measures the load
//! generator's own cost per operation.

use std::future::{Future, Ready, ready};

use super::{OpError, Seen, Target};
use crate::generator::OpSpec;

/// Does nothing, immediately.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullTarget;

impl Target for NullTarget {
    fn name(&self) -> &'static str {
        "null"
    }

    #[inline]
    fn execute<'a>(
        &'a self,
        op: OpSpec,
        key: &'a [u8],
        value: &'a [u8],
    ) -> impl Future<Output = Result<Seen, OpError>> + 'a {
        // Touch the inputs so the work of producing them cannot be optimised away.
        std::hint::black_box((op, key.len(), value.len()));
        let done: Ready<Result<Seen, OpError>> = ready(Ok(Seen::Nothing));
        done
    }
}
