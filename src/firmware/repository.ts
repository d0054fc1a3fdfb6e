/** The repository of a device: <prefix>/<device>, one trailing "/" of the prefix ignored (as OtaFlux). */
export const repositoryOf = (prefix: string, device: string) => {
  const p = prefix.replace(/\/$/, '');
  return p ? `${p}/${device}` : device;
};
