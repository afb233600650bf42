// dcmjs ships no type declarations; the tag browser only reads its dictionary.
declare module "dcmjs";
