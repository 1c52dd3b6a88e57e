/** Where the agent looks for its configuration unless told otherwise (--config, CERT_AGENT_CONFIG). */
export const DEFAULT_CONFIG_PATH = '/etc/cert-agent/config.yaml';
