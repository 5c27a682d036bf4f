/**
 * What the control plane needs from a broker to keep credentials and topic isolation in step with
 * the store. The embedded broker reads the store directly; Mosquitto runs EdgeFleet's auth plugin
 * (control-plane/broker/mosquitto-plugin/), which the control plane feeds over `$CONTROL`.
 *
 * Credentials travel as the store's salted hashes (store/secrets.ts), never as passwords.
 */
export interface BrokerAccess {
  readonly kind: 'embedded' | 'mosquitto';
  /** Called once the control plane's own MQTT session is up. */
  init(): Promise<void>;
  /** Whether the broker can take a grant now; routes that need one answer 503 with the reason when not. */
  availability(): BrokerAvailability;
  /**
   * Gives a device its broker login. Rejects with BrokerUnavailableError when the broker does not
   * take it in time; the caller then must not record the device as enrolled (grant, then row).
   */
  grantDevice(deviceId: string, passwordHash: string): Promise<void>;
  /** Removes the login and disconnects the device. Never rejects: queued and retried while the broker is away. */
  revokeDevice(deviceId: string): Promise<void>;
  grantEnrollmentToken(tokenId: string, secretHash: string): Promise<void>;
  /** Never rejects, like revokeDevice. */
  revokeEnrollmentToken(tokenId: string): Promise<void>;
  /**
   * Lets these devices subscribe to (and receive) `transferDataTopic(transferId)`, read-only. Adds to
   * earlier grants of the same transfer. Rejects with BrokerUnavailableError like grantDevice.
   */
  grantTransferRead(transferId: string, deviceIds: readonly string[]): Promise<void>;
  /** Ends every grant of the transfer; devices stop receiving its data at once. Never rejects. */
  revokeTransfer(transferId: string): Promise<void>;
  /**
   * A broker in this process (the embedded one) hands the control plane what matches `filters` directly, without a
   * TCP connection, MQTT parsing and a PUBACK per message. Resolves once subscribed, with the function that ends it.
   */
  subscribeLocal?(filters: readonly string[], deliver: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export type BrokerAvailability = { ok: true } | { ok: false; reason: string };

/** The broker cannot take a command now; HTTP answers 503 with this message. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}

/**
 * The largest MQTT packet either broker accepts: one transfer chunk at its maximum size plus the
 * frame header (< 300 bytes), the topic and MQTT's own header, with room to spare.
 */
export { MAX_MQTT_PACKET_BYTES } from '../../shared/transfer.ts';
