// Placeholder until the code generator lands: the generator overwrites this directory.
// The shape below is the contract the client, server and simulator build against.

/** Command name → argument and return types. */
// biome-ignore lint/suspicious/noEmptyInterface: filled by codegen
export interface QmpCommandMap {}
/** Event name → event data type (`undefined` for events without data). */
// biome-ignore lint/suspicious/noEmptyInterface: filled by codegen
export interface QmpEventMap {}
