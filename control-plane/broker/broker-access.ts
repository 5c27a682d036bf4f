/**
 * What the control plane needs from a broker to keep credentials and topic isolation in step with
 * the store. The embedded broker reads the store directly; Mosquitto is driven through its
 * dynamic-security plugin.
 */
export interface BrokerAccess {
  readonly kind: 'embedded' | 'mosquitto';
  /** Called once the control plane's own MQTT session is up. */
  init(): Promise<void>;
  grantDevice(deviceId: string, password: string): Promise<void>;
  /** Removes the credential and disconnects the device if connected. */
  revokeDevice(deviceId: string): Promise<void>;
  grantEnrollmentToken(tokenId: string, secret: string): Promise<void>;
  revokeEnrollmentToken(tokenId: string): Promise<void>;
  close(): Promise<void>;
}
