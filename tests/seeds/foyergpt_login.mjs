// FoyerGPT's TypeScript example (seeds/004, "JavaScript/TypeScript"), with its type annotations
// removed so Node runs it as is; the calls are unchanged. Usage: node foyergpt_login.mjs BASE EMAIL PASSWORD
import axios from 'axios';

const [base, email, password] = process.argv.slice(2);

const api = axios.create({
  baseURL: `${base}/api`,
  headers: {
    'Content-Type': 'application/json'
  }
});

// Login
const login = async (email, password) => {
  const response = await api.post('/auth/login', { email, password });
  const { access_token } = response.data;

  // Stocker le token pour les requêtes futures
  api.defaults.headers.common['Authorization'] = `Bearer ${access_token}`;

  return response.data;
};

const data = await login(email, password);
const me = await api.get('/auth/me');
console.log(JSON.stringify({ token_type: data.token_type, me: me.data.email }));
