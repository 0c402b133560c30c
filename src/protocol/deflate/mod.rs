//! permessage-deflate (RFC 7692): `negotiate` reads the client's offers and
//! writes the server's answer; `codec` compresses and inflates whole messages.
//! Both are sans-IO, like the rest of `protocol`.

pub mod codec;
pub mod negotiate;

pub use codec::{Deflater, InflateError, Inflater};
pub use negotiate::{negotiate, DeflateMode, DeflateParams};
