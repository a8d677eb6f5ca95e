//! Logging shim: `trace!`/`debug!`/`warn!` go to defmt, to `log`, or nowhere.
//! Format strings use `{}` only, which both back-ends understand.
#![allow(unused_macros)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are mutually exclusive");

macro_rules! trace {
    ($($x:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::trace!($($x)*);
        #[cfg(feature = "log")]
        ::log::trace!($($x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { let _ = format_args!($($x)*); }
    }};
}

macro_rules! debug {
    ($($x:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($x)*);
        #[cfg(feature = "log")]
        ::log::debug!($($x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { let _ = format_args!($($x)*); }
    }};
}

pub(crate) use {debug, trace};
