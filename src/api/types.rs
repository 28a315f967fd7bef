//! The TypeScript declarations of the JS API that wasm-bindgen cannot
//! derive (the options, the events, the custom store interface and the
//! error codes), kept in `types.d.ts`, where an editor reads them as
//! TypeScript, and included in the package's declarations at build time.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("types.d.ts");
