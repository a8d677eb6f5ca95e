//! Logging shim: `trace!`/`debug!`/`info!`/`warn!` go to defmt, to `log`, or nowhere.
//! Format strings use `{}` only, which both back-ends understand.
#![allow(unused_macros)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are mutually exclusive");

macro_rules! log_at {
    ($level:ident, $($x:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::$level!($($x)*);
        #[cfg(feature = "log")]
        ::log::$level!($($x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { let _ = format_args!($($x)*); }
    }};
}

macro_rules! trace { ($($x:tt)*) => { $crate::fmt::log_at!(trace, $($x)*) }; }
macro_rules! debug { ($($x:tt)*) => { $crate::fmt::log_at!(debug, $($x)*) }; }
macro_rules! info { ($($x:tt)*) => { $crate::fmt::log_at!(info, $($x)*) }; }
macro_rules! warning { ($($x:tt)*) => { $crate::fmt::log_at!(warn, $($x)*) }; }

#[allow(unused_imports)]
pub(crate) use {debug, info, log_at, trace, warning};
