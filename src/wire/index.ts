/**
 * The wire layer: QEMU-faithful JSON framing and writing, a generic message connection, and
 * the transports (unix, TCP, any Duplex, in-memory pairs).
 *
 * @module
 */
export { Connection, type ConnectionOptions, type TrafficDirection } from "./connection.js";
export {
  type ParseOptions,
  type ParseResult,
  parseIntegerToken,
  parseStringToken,
  parseTokens,
  type TokenList,
  TokenType,
} from "./json-parser.js";
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_NESTING,
  DEFAULT_MAX_TOKENS,
  type JsonDialect,
  JsonStreamDecoder,
  type JsonStreamDecoderOptions,
  JsonStreamErrorItem,
  type JsonStreamItem,
} from "./json-stream.js";
export { decodeQemuText, isValidCodepoint, modUtf8Codepoint, utf8Length } from "./json-utf8.js";
export {
  formatDouble,
  qdictBucket,
  qdictKeyOrder,
  quoteQemuString,
  restoreQdictOrder,
  type WriteQemuJsonOptions,
  writeCompactJson,
  writeQemuJson,
} from "./json-writer.js";
export {
  createMemoryPair,
  formatTarget,
  joinStreams,
  type Listener,
  listen,
  type OpenStreamOptions,
  openStream,
  parseTarget,
  type Target,
} from "./transport.js";
