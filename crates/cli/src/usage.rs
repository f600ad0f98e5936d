//! Usage errors: a bad value for a flag or argument. They exit 2, as a command line
//! clap refuses does, with keep's own one line; 125 stays for a workload keep
//! cannot run.

/// A bad command line: one line naming the flag and what is wrong with its value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Returns a usage error from the enclosing function.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::usage::Usage(format!($($arg)*))))
    };
}
pub(crate) use usage;

/// Whether an error is a usage error.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Usage>().is_some()
}
