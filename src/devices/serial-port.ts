import { createRequire } from 'node:module';
import type { SerialPort as SerialPortType } from 'serialport';
import type { Profile } from './profiles.js';

export type SerialPortLike = Pick<SerialPortType, 'on' | 'off' | 'close' | 'isOpen' | 'path' | 'write' | 'drain'>;

let ctor: typeof SerialPortType | undefined;
/** serialport (with its native binding) is loaded only when a device is opened. */
function SerialPort(): typeof SerialPortType {
  ctor ??= (createRequire(import.meta.url)('serialport') as { SerialPort: typeof SerialPortType }).SerialPort;
  return ctor;
}

/** Opens `path` with the profile's serial settings; rejects with the system's error (ENOENT, EACCES, EBUSY …). */
export function openSerialPort(path: string, profile: Profile): Promise<SerialPortType> {
  const s = profile.serial;
  const Port = SerialPort();
  const port = new Port({
    path,
    baudRate: s.baudRate,
    dataBits: s.dataBits,
    parity: s.parity,
    stopBits: s.stopBits,
    rtscts: s.flowControl === 'rtscts',
    xon: s.flowControl === 'xonxoff',
    xoff: s.flowControl === 'xonxoff',
    autoOpen: false,
    // exclusive (TIOCEXCL): a second program opening the same device is refused
    lock: true,
  });
  return new Promise((resolve, reject) => port.open((error) => (error ? reject(error) : resolve(port))));
}

/** Closes at once; a port whose device is gone may fail to close, which changes nothing. */
export function closeSerialPort(port: SerialPortLike): Promise<void> {
  if (!port.isOpen) return Promise.resolve();
  return new Promise((resolve) => port.close(() => resolve()));
}
