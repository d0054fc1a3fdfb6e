import { useState } from 'preact/hooks';

/** Asked for when the agent answers 401: http.token is set. The token stays in this tab (sessionStorage). */
export function TokenForm({ onSubmit, rejected }: { onSubmit: (token: string) => void; rejected: boolean }) {
  const [value, setValue] = useState('');
  return (
    <main id="main">
      <form
        class="card token"
        onSubmit={(e) => {
          e.preventDefault();
          if (value) onSubmit(value);
        }}
      >
        <h2>Sign in</h2>
        <p>
          This agent needs its API token (<code>http.token</code>). It is kept for this tab only.
        </p>
        {rejected && (
          <p class="error" role="alert">
            The token was refused.
          </p>
        )}
        <label>
          Token <input type="password" autocomplete="current-password" name="token" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
