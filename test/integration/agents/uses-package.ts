/** Uses an npm package that its policy lists, installed in the image's cached package layer. */
import leftPad from "left-pad";
console.log(leftPad("42", 5, "0"));
