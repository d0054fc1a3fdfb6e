/** A device id must be one OCI repository path component (distribution-spec), so it can never
 * reach into another repository or build a malformed URL; checked before any registry call. */
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

export const MAX_DEVICE_ID = 128;

export function isValidDeviceId(device: string): boolean {
  return device.length <= MAX_DEVICE_ID && COMPONENT.test(device);
}
