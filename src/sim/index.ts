/**
 * The simulated QEMU (`qmpkit/sim`): {@link SimulatedMachine} with its run-state machine,
 * actions, guest and host triggers, version profiles, capability profiles recorded from real
 * QEMU, QEMU-style options and guest scripts.
 *
 * @module
 */
export {
  ActionOptionError,
  causedByGuest,
  checkActions,
  DEFAULT_ACTIONS,
  PANIC_ACTIONS,
  type PanicAction,
  REBOOT_ACTIONS,
  type RebootAction,
  type RunStateActions,
  SHUTDOWN_ACTIONS,
  SHUTDOWN_CAUSES,
  type ShutdownAction,
  type ShutdownCause,
  WATCHDOG_ACTIONS,
  type WatchdogAction,
} from "./actions.js";
export type {
  BlockDeviceOptions,
  BlockErrorAction,
  MigrationFailure,
  NicOptions,
  QdevDeviceOptions,
  SimDevicesOptions,
} from "./devices.js";
export {
  GuestScriptError,
  GuestScriptRunner,
  type GuestScriptStep,
  parseGuestScript,
  parseGuestTime,
} from "./guest-script.js";
export {
  SimMigration,
  type SimMigrationOptions,
} from "./migration.js";
export * from "./modules/index.js";
export { guestActionNames, SIM_SCHEMA, simCommandValidators } from "./sim-schema.js";
export {
  type DeviceHost,
  ModuleHost,
  type ModuleHostOptions,
  type SimClock,
  type SimCommandRun,
  type SimCommandSpec,
  type SimModule,
} from "./sim-module.js";
export {
  type HostSignal,
  MachineCore,
  type MachineCoreOptions,
  type MachineHost,
} from "./machine-core.js";
export {
  emptyCommandLine,
  type MonitorSpec,
  parseMonitorSpec,
  type ParseQemuOptionsOptions,
  parseQemuOptions,
  QEMU_OPTION_TABLE,
  QemuOptionError,
  type QemuOptionSpec,
  qemuOptionsHelp,
  type SimCommandLine,
  splitQemuOpts,
} from "./qemu-options.js";
export {
  type AdvertisedCommands,
  formatProfile,
  PROFILE_COMMAND_LINE,
  ProfileError,
  type ProfileHeader,
  type ProfileRecord,
  parseProfile,
  profilePath,
  RecordedProfile,
  recordedProfile,
  recordedVersions,
  requestLine,
  requireRecordedProfile,
} from "./recorded-profile.js";
export {
  isLive,
  isRunning,
  isRunState,
  isTransitionAllowed,
  needsReset,
  RUN_STATES,
  type RunState,
  RunStateMachine,
  RunStateTransitionError,
  runStateTransitions,
} from "./run-state.js";
export {
  type GuestControls,
  type HostControls,
  SimulatedMachine,
  type SimulatedMachineOptions,
} from "./simulated-machine.js";
export {
  BUILD_SYMBOLS,
  changedIn,
  DEBIAN_BUILD,
  DEFAULT_QEMU_VERSION,
  QEMU_PROFILES,
  type QemuProfile,
  type QemuVersionNumber,
  qemuProfile,
  RELEASE_CHANGES,
  type ReleaseChange,
  type ReleaseChangeName,
  UnknownQemuVersionError,
  versionAtLeast,
} from "./versions.js";
